"""No raw user UUIDs, emails, usernames in query strings, or tokens in the logs (seed 003):
through Django's configured logging, and in gunicorn's access log as `make run` starts it."""

import io
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from config.log_masking import mask

ROOT = Path(__file__).resolve().parent.parent
USER_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
EMAIL = "alice.smith@example.com"
TOKEN = "a3" * 32
SECRETS = (USER_ID, USER_ID.replace("-", ""), EMAIL, "alice.smith", "bob_the_user", TOKEN)


@pytest.fixture
def django_log():
    """What the configured stdout handler (its filter and formatter) writes."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "stdout")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def assert_masked(text: str):
    for secret in SECRETS:
        assert secret not in text, (secret, text)


def test_request_warnings_are_masked(django_log):
    logging.getLogger("django.request").warning(
        "Not Found: %s",
        f"/api/v1/admin/assignments/exp/{USER_ID}?user=bob_the_user&q=alice.smith&days=7",
    )

    line = django_log.getvalue()
    assert_masked(line)
    assert "/api/v1/admin/assignments/exp/uuid#" in line
    assert "days=7" in line


def test_app_log_records_are_masked_however_the_value_arrives(django_log):
    log = logging.getLogger("recsys_experiments.anything")
    log.info("user %s (%s) logged in", uuid.UUID(USER_ID), EMAIL)
    log.info("Authorization: Token %s", TOKEN)
    log.info("body %s", {"username": "bob_the_user", "password": "hunter22", "token": TOKEN})
    log.info("link /admin/?email=%s&token=%s", EMAIL.replace("@", "%40"), TOKEN)
    log.warning("hex id %s", USER_ID.replace("-", "").upper())

    text = django_log.getvalue()
    assert_masked(text)
    assert "hunter22" not in text
    assert text.count("\n") == 5


def test_the_same_user_gets_the_same_pseudonym(django_log):
    log = logging.getLogger("recsys_experiments.anything")
    log.info("one %s", USER_ID)
    log.info("two %s", USER_ID.upper())

    first, second = django_log.getvalue().splitlines()
    assert first.split("one ")[1] == second.split("two ")[1]
    assert mask(str(uuid.uuid4())) != mask(USER_ID)


def test_tracebacks_are_masked(django_log):
    try:
        raise ValueError(f"duplicate key (user_id)=({USER_ID}) for {EMAIL}")
    except ValueError:
        logging.getLogger("django.request").exception("Internal Server Error: /api/v1/outcomes")

    text = django_log.getvalue()
    assert_masked(text)
    assert "Traceback" in text and "ValueError" in text


def test_a_crafted_path_cannot_forge_a_log_line(django_log):
    logging.getLogger("django.request").warning(
        "Not Found: %s", "/x\n2026-01-01 00:00:00,000 INFO fake all good"
    )

    assert django_log.getvalue().count("\n") == 1


GUNICORN_ACCESS = r"""
import sys
from datetime import timedelta
from types import SimpleNamespace

from gunicorn.config import Config
from gunicorn.glogging import Logger

cfg = Config()
namespace = {}
exec(open("config/gunicorn.conf.py").read(), namespace)
for name in ("accesslog", "access_log_format", "logconfig_dict"):
    cfg.set(name, namespace[name])
logger = Logger(cfg)
environ = {
    "REQUEST_METHOD": "GET",
    "RAW_URI": sys.argv[1] + "?" + sys.argv[2],
    "PATH_INFO": sys.argv[1],
    "QUERY_STRING": sys.argv[2],
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "203.0.113.7",
    "HTTP_REFERER": "http://x/admin/?q=" + sys.argv[3],
    "HTTP_AUTHORIZATION": "Token " + sys.argv[4],
    "HTTP_USER_AGENT": "app/2.4 " + sys.argv[3],
}
response = SimpleNamespace(status="200 OK", sent=12, headers=[])
request = SimpleNamespace(headers=[("AUTHORIZATION", "Token " + sys.argv[4])])
logger.access(response, request, environ, timedelta(milliseconds=5))
logger.error("worker saw user %s", sys.argv[3])
"""


def test_gunicorn_access_log_has_no_query_string_and_masks_the_path():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            GUNICORN_ACCESS,
            f"/api/v1/admin/assignments/exp/{USER_ID}",
            f"user=bob_the_user&email={EMAIL}&token={TOKEN}",
            EMAIL,
            TOKEN,
        ],
        cwd=ROOT,
        env={**os.environ, "SECRET_KEY": "test"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    access, error = result.stdout, result.stderr
    assert '"GET /api/v1/admin/assignments/exp/uuid#' in access
    assert " 200 12 " in access
    assert_masked(access)
    assert "worker saw user email#" in error
    assert_masked(error)
