"""A client sending a 10 MB body to a real gunicorn gets the JSON 413, not a broken pipe: the
server reads and discards the oversized body before it answers."""

from __future__ import annotations

import http.client
import json
import os
from urllib.parse import urlsplit

from tests.servers import gunicorn


def test_a_ten_megabyte_body_gets_the_json_413_over_a_real_socket(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "oversized",
        "SECURE_SSL_REDIRECT": "false",
    }
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1")
    with gunicorn(tmp_path / "gunicorn.log", env=env, workers=1) as base_url:
        address = urlsplit(base_url)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        connection.request(
            "POST",
            "/api/v1/deck",
            body=b'{"limit": 5, "pad": "' + b"x" * 10_000_000 + b'"}',
            headers={"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        body = json.loads(response.read())

    assert response.status == 413
    assert body["code"] == "payload_too_large"
