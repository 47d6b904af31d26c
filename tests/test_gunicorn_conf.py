"""config/gunicorn.conf.py sizes gthread workers to the machine, overridable per deployment."""

import os
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parent.parent / "config" / "gunicorn.conf.py"


def load_conf(monkeypatch, cores: int, **env: str) -> dict:
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    for name in ("GUNICORN_WORKERS", "GUNICORN_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    namespace: dict = {}
    exec(CONF.read_text(), namespace)  # noqa: S102 - the project's own config file
    return namespace


def test_gthread_workers_follow_the_cores(monkeypatch):
    two = load_conf(monkeypatch, 2)
    eight = load_conf(monkeypatch, 8)

    assert (two["worker_class"], two["workers"], two["threads"]) == ("gthread", 3, 4)
    assert (eight["workers"], eight["threads"]) == (9, 4)


def test_the_environment_overrides_the_sizing(monkeypatch):
    conf = load_conf(monkeypatch, 2, GUNICORN_WORKERS="5", GUNICORN_THREADS=" 2 ")

    assert (conf["workers"], conf["threads"]) == (5, 2)


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_a_bad_size_is_refused_at_start(monkeypatch, value):
    with pytest.raises(ValueError, match="GUNICORN_WORKERS"):
        load_conf(monkeypatch, 2, GUNICORN_WORKERS=value)
