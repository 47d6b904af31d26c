"""The first-run tooling (issue 16 §6): each `make run`/`make test` step prints a line before
it starts and its elapsed time after, and `make db-status`/`make stop-db` exit 0 against a
stopped cluster. The Makefile runs in a copy of the project in a temporary folder, whose
cluster (derived from that folder's path) does not exist."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from config.steps import elapsed

ROOT = Path(__file__).resolve().parent.parent


def steps(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "config.steps", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_step_prints_a_line_before_and_its_time_after():
    result = steps("loading the demo data", "--", "sh", "-c", "echo inner")

    first, inner, last = result.stdout.splitlines()
    assert result.returncode == 0
    assert first == "==> loading the demo data ..."
    assert inner == "inner"
    assert last.startswith("==> loading the demo data: done in ") and last.endswith("s")


def test_a_failing_step_says_so_and_keeps_the_exit_code():
    result = steps("migrating the database", "--", "sh", "-c", "exit 3")

    assert result.returncode == 3
    assert result.stdout.splitlines()[-1].startswith("==> migrating the database: failed after ")
    assert result.stdout.splitlines()[-1].endswith("(exit 3)")


def test_a_missing_command_and_bad_usage():
    missing = steps("serving", "--", "/nonexistent/gunicorn")
    usage = steps("serving", "gunicorn")

    assert missing.returncode == 127
    assert "==> serving: cannot run /nonexistent/gunicorn" in missing.stdout
    assert usage.returncode == 2 and usage.stderr.startswith("usage:")


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0.04, "0.0s"), (4.3, "4.3s"), (59.94, "59.9s"), (161, "2m41s")]
)
def test_elapsed(seconds, shown):
    assert elapsed(seconds) == shown


@pytest.fixture
def project_copy(tmp_path):
    """The Makefile and the stdlib-only tooling, in a folder of their own."""
    copy = tmp_path / "project"
    (copy / "config").mkdir(parents=True)
    for name in ("Makefile", "pyproject.toml", "config/__init__.py", "config/localdb.py",
                 "config/steps.py"):  # fmt: skip
        shutil.copy(ROOT / name, copy / name)
    return copy


def make(project, *targets) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "MAKEFLAGS"}}
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(project), *targets, f"PYTHON={sys.executable}"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def test_db_status_reports_stopped_and_exits_0(project_copy):
    result = make(project_copy, "db-status")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("localdb: stopped (")
    assert "Error" not in result.stderr


def test_stop_db_on_a_stopped_cluster_exits_0(project_copy):
    result = make(project_copy, "stop-db")

    assert (result.returncode, result.stdout.strip()) == (0, "localdb: not running")


def test_localdb_status_itself_exits_3_when_stopped(project_copy):
    result = subprocess.run(
        [sys.executable, "-m", "config.localdb", "status"],
        cwd=project_copy,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 3 and "stopped" in result.stdout


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            "run",
            ["installing the project", "starting PostgreSQL", "migrating the database",
             "collecting static files", "loading the demo data", "creating the dev logins",
             "serving on http://127.0.0.1:8000/"],
        ),
        (
            "test",
            ["installing the project", "linting", "starting PostgreSQL", "running the tests",
             "running the API tests through PgBouncer"],
        ),
    ],
)  # fmt: skip
def test_every_step_of_run_and_test_goes_through_a_step_line(project_copy, target, expected):
    # -n prints what make would run; each command is wrapped in config.steps "WHAT".
    result = make(project_copy, "-n", target)

    wrapped = [
        line.split('"')[1] for line in result.stdout.splitlines() if "-m config.steps" in line
    ]
    assert result.returncode == 0, result.stderr
    assert len(wrapped) == len(expected)
    for label, start in zip(wrapped, expected, strict=True):
        assert label.startswith(start), (label, start)
    commands = [line for line in result.stdout.splitlines() if "config.localdb run" in line]
    assert all("-m config.steps" in line or line.startswith("  ") for line in commands)
