"""Settings under a production-like environment: `check --deploy` is clean, and every
security setting can be changed from the environment. Each case runs in a fresh process,
since settings are read from the environment at start-up."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": "recsys.example.com",
}
SHOWN = [
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER",
    "API_DOCS_STAFF_ONLY",
    "TRUSTED_PROXY_COUNT",
    "API_THROTTLE_RATES",
]
SHOW_SETTINGS = f"""
import json, django
from django.conf import settings
django.setup()
print(json.dumps({{name: getattr(settings, name, None) for name in {SHOWN!r}}}))
"""


def run(args: list[str], **environment) -> subprocess.CompletedProcess:
    env = {**os.environ, **environment}
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def settings_under(**environment) -> dict:
    result = run(["-c", SHOW_SETTINGS], **environment)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_is_clean_in_production():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_reports_a_weakened_setting():
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        **PRODUCTION,
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
    )

    assert result.returncode != 0
    assert "security.W008" in result.stderr + result.stdout
    assert "security.W012" in result.stderr + result.stdout


def test_production_defaults_are_safe():
    shown = settings_under(**PRODUCTION)

    assert shown["SECURE_SSL_REDIRECT"] is True
    assert shown["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert shown["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is shown["SECURE_HSTS_PRELOAD"] is True
    assert shown["SESSION_COOKIE_SECURE"] is shown["CSRF_COOKIE_SECURE"] is True
    assert shown["API_DOCS_STAFF_ONLY"] is True
    assert shown["SECURE_PROXY_SSL_HEADER"] is None
    assert shown["TRUSTED_PROXY_COUNT"] == 0


def test_development_serves_plain_http():
    shown = settings_under(DEBUG="true")

    assert shown["SECURE_SSL_REDIRECT"] is False
    assert shown["SECURE_HSTS_SECONDS"] == 0
    assert shown["SESSION_COOKIE_SECURE"] is shown["CSRF_COOKIE_SECURE"] is False
    assert shown["API_DOCS_STAFF_ONLY"] is False


def test_every_setting_comes_from_the_environment():
    shown = settings_under(
        **PRODUCTION,
        SECURE_HSTS_SECONDS="600",
        SECURE_HSTS_PRELOAD="false",
        API_DOCS_STAFF_ONLY="false",
        TRUSTED_PROXY_COUNT="2",
        THROTTLE_LOGIN_PER_USERNAME="5/min",
        THROTTLE_LOGIN_PER_ADDRESS="off",
        THROTTLE_DECK="1000/hour",
        THROTTLE_OUTCOMES="9/s",
        THROTTLE_ASSIGNMENTS="30/min",
        THROTTLE_EXPOSURES="off",
        THROTTLE_ANONYMOUS_PER_ADDRESS="500/hour",
        THROTTLE_SIGNUP_PER_ADDRESS="off",
        THROTTLE_CONVERSIONS="30/s",
    )

    assert shown["SECURE_HSTS_SECONDS"] == 600
    assert shown["SECURE_HSTS_PRELOAD"] is False
    assert shown["API_DOCS_STAFF_ONLY"] is False
    assert shown["TRUSTED_PROXY_COUNT"] == 2
    # Behind a proxy, the header it sets tells Django the client used https.
    assert shown["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert shown["API_THROTTLE_RATES"] == {
        "login_username": "5/min",
        "login_address": None,
        "deck": "1000/hour",
        "outcomes": "9/s",
        "assignments": "30/min",
        "exposures": None,
        "anonymous_address": "500/hour",
        "signup_address": None,
        "conversions": "30/s",
    }


@pytest.mark.parametrize("rate", ["10", "ten/min", "10/fortnight", "0/min"])
def test_a_malformed_rate_stops_start_up_naming_the_variable(rate):
    result = run(["manage.py", "check"], **PRODUCTION, THROTTLE_DECK=rate)

    assert result.returncode != 0
    assert "THROTTLE_DECK" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AXES_COOLOFF_MINUTES", "0"), ("AXES_FAILURE_LIMIT", "0"), ("TOKEN_LIMIT_PER_USER", "0")],
)
def test_a_limit_that_would_lock_everyone_out_stops_start_up(variable, value):
    result = run(["manage.py", "check"], **PRODUCTION, **{variable: value})

    assert result.returncode != 0
    assert variable in result.stderr
