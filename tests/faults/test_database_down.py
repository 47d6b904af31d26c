"""The database goes away under a running gunicorn and comes back: every API endpoint answers a
JSON 503 with Retry-After quickly, the admin a plain "database unavailable" page, and the same
workers serve again afterwards with no restart. The database is cut with a TCP proxy in front
of the test database, so the cluster the rest of the suite uses is never stopped."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

from tests.factories.users import UserFactory
from tests.servers import DatabaseProxy, gunicorn

PASSWORD = "correct horse battery staple"
CONNECT_TIMEOUT = 3


def call(base_url: str, method: str, path: str, body=None, token: str | None = None):
    """(status, headers, body text) of one request; never raises for an HTTP error."""
    request = urllib.request.Request(  # noqa: S310 - a loopback http URL
        base_url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


API_CALLS = [
    ("POST", "/api/v1/auth/token", {"username": "someone", "password": "x"}),
    ("POST", "/api/v1/deck", {"limit": 5}),
    ("POST", "/api/v1/outcomes", {"outcomes": [{"event_id": "e1"}]}),
    ("GET", "/api/v1/me/experiments", None),
    ("GET", "/api/v1/admin/experiments", None),
    ("GET", "/api/v1/admin/telemetry/health", None),
]


@pytest.mark.django_db(transaction=True)
def test_api_503_while_the_database_is_down_and_the_same_workers_recover(tmp_path):
    # gunicorn runs with the production password hashers, not the tests' fast MD5 one.
    user = UserFactory(username="mobile")
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "fixedsaltfortest")
    user.save(update_fields=["password"])
    database = connection.settings_dict
    proxy = DatabaseProxy(database)
    proxy.up()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@127.0.0.1:{proxy.port}/{database['NAME']}",
        "DATABASE_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
        "SECRET_KEY": "faults-test",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        # Production-like, but served over plain http on loopback.
        "SECURE_SSL_REDIRECT": "false",
    }
    try:
        with gunicorn(tmp_path / "gunicorn.log", env=env, workers=1) as base_url:
            status, _, body = call(
                base_url, "POST", "/api/v1/auth/token", {"username": "mobile", "password": PASSWORD}
            )
            assert status == 200, body
            token = json.loads(body)["token"]
            assert call(base_url, "POST", "/api/v1/deck", {"limit": 5}, token)[0] == 200
            workers_before = worker_pids(tmp_path / "gunicorn.log")

            proxy.down()
            for method, path, body in API_CALLS:
                started = time.monotonic()
                status, headers, text = call(base_url, method, path, body, token)
                assert time.monotonic() - started < CONNECT_TIMEOUT + 1, path
                assert status == 503, (path, text)
                assert headers["Retry-After"].isdigit(), path
                error = json.loads(text)
                assert error["status"] == 503 and error["code"] == "service_unavailable", path
            status, headers, page = call(base_url, "GET", "/admin/")
            assert status == 503 and "Retry-After" in headers
            assert "Database unavailable" in page
            assert call(base_url, "GET", "/api/health")[0] == 503

            proxy.up()
            assert call(base_url, "GET", "/api/health")[0] == 200
            assert call(base_url, "POST", "/api/v1/deck", {"limit": 5}, token)[0] == 200
            assert call(base_url, "GET", "/api/v1/me/experiments", None, token)[0] == 200
            assert worker_pids(tmp_path / "gunicorn.log") == workers_before
    finally:
        proxy.down()


def worker_pids(log) -> list[str]:
    """The pids of the workers gunicorn booted so far, from its log."""
    return [
        line.split("pid: ")[1].strip() for line in log.read_text().splitlines() if "pid: " in line
    ]
