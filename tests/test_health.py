import json
import os
import socket
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_health_reports_ok_when_database_answers(client, db):
    response = client.get("/api/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def closed_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_health_reports_503_when_database_is_unreachable():
    # A separate process, configured the way production is, whose database URL points at a
    # port nobody listens on: the real connection fails, nothing is mocked.
    port = closed_tcp_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://nobody:secret@127.0.0.1:{port}/nothing",
        "SECRET_KEY": "health-test",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "testserver",
    }
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/api/health');"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"status": 503, "body": {"status": "degraded", "database": "unavailable"}}
