"""Mobile login, tokens and logout (/api/v1/auth/...), django-rest-knox underneath."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories.users import UserFactory
from tests.helpers import api_error_fields

PASSWORD = "correct horse battery staple"
TOKEN_URL = "/api/v1/auth/token"


def log_in(client, username, password=PASSWORD):
    return client.post(TOKEN_URL, {"username": username, "password": password}, format="json")


def with_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def me(client):
    return client.get("/api/v1/me/experiments")


@pytest.fixture
def mobile(db):
    return UserFactory(username="mobile", email="Mobile@Example.com")


def test_username_or_email_and_password_give_a_working_token(api_client, mobile):
    by_name = log_in(api_client, "mobile")
    by_email = log_in(api_client, "mobile@example.com")

    assert by_name.status_code == by_email.status_code == 200
    assert by_name.json()["expiry"]
    for response in (by_name, by_email):
        assert me(with_token(response.json()["token"])).status_code == 200


def test_each_login_is_a_token_of_its_own_and_only_its_digest_is_stored(api_client, mobile):
    phone = log_in(api_client, "mobile").json()["token"]
    tablet = log_in(api_client, "mobile").json()["token"]

    assert phone != tablet
    assert me(with_token(phone)).status_code == me(with_token(tablet)).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("select digest, token_key from knox_authtoken")
        stored = cursor.fetchall()
    assert len(stored) == 2
    assert not any(key in digest for key in (phone, tablet) for digest, _ in stored)
    # Only a 15-character lookup prefix of each key is kept, not enough to authenticate.
    assert {prefix for _, prefix in stored} == {phone[:15], tablet[:15]}
    assert me(with_token(phone[:15])).status_code == 401


def test_beyond_the_limit_the_oldest_tokens_are_revoked(api_client, mobile, settings):
    settings.TOKEN_LIMIT_PER_USER = 2
    first, second, third = (log_in(api_client, "mobile").json()["token"] for _ in range(3))

    assert me(with_token(first)).status_code == 401
    assert me(with_token(second)).status_code == me(with_token(third)).status_code == 200


def test_an_expired_token_is_401_and_deleted_at_the_next_login(api_client, mobile):
    key = log_in(api_client, "mobile").json()["token"]
    AuthToken.objects.update(expiry=timezone.now() - timedelta(seconds=1))

    response = me(with_token(key))
    log_in(api_client, "mobile")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert AuthToken.objects.count() == 1
    assert me(with_token(key)).status_code == 401


def test_the_ttl_comes_from_settings_and_use_extends_it(api_client, mobile, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": timedelta(hours=2)}
    body = log_in(api_client, "mobile").json()
    token = AuthToken.objects.get()
    assert timedelta(hours=1, minutes=59) < token.expiry - timezone.now() <= timedelta(hours=2)

    AuthToken.objects.update(expiry=timezone.now() + timedelta(minutes=5))
    assert me(with_token(body["token"])).status_code == 200

    token.refresh_from_db()
    assert token.expiry - timezone.now() > timedelta(hours=1, minutes=59)


def test_logout_revokes_only_the_calling_token(api_client, mobile):
    phone = log_in(api_client, "mobile").json()["token"]
    tablet = log_in(api_client, "mobile").json()["token"]

    response = with_token(phone).post("/api/v1/auth/logout")

    assert response.status_code == 204
    assert me(with_token(phone)).status_code == 401
    assert me(with_token(tablet)).status_code == 200
    assert with_token(phone).post("/api/v1/auth/logout").status_code == 401


def test_logout_all_revokes_every_token_of_the_caller_only(api_client, mobile):
    phone = log_in(api_client, "mobile").json()["token"]
    tablet = log_in(api_client, "mobile").json()["token"]
    _, someone_elses = AuthToken.objects.create(UserFactory())

    response = with_token(phone).post("/api/v1/auth/logout-all")

    assert response.status_code == 204
    assert me(with_token(phone)).status_code == me(with_token(tablet)).status_code == 401
    assert me(with_token(someone_elses)).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/auth/logout", "/api/v1/auth/logout-all"])
def test_logout_without_a_token_is_401(api_client, db, path):
    response = api_client.post(path)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_an_inactive_users_token_stops_working(api_client, mobile):
    key = log_in(api_client, "mobile").json()["token"]
    mobile.is_active = False
    mobile.save()

    assert me(with_token(key)).status_code == 401


def test_wrong_password_unknown_user_and_missing_fields_are_400(api_client, mobile):
    wrong = log_in(api_client, "mobile", "nope")
    unknown = log_in(api_client, "nobody")
    missing_password = api_client.post(TOKEN_URL, {"username": "mobile"}, format="json")
    missing_both = api_client.post(TOKEN_URL, {}, format="json")

    assert wrong.status_code == unknown.status_code == 400
    assert "password" in api_error_fields(wrong)
    assert api_error_fields(wrong) == api_error_fields(unknown)
    assert missing_password.status_code == 400 and "password" in api_error_fields(missing_password)
    assert missing_both.status_code == 400
    assert {"username", "password"} <= set(api_error_fields(missing_both))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "mob\x00ile", "password": PASSWORD}, "username"),
        ({"username": "mobile", "password": "correct\x00horse"}, "password"),
        ({"username": ["mobile"], "password": PASSWORD}, "username"),
        ({"username": {"name": "mobile"}, "password": PASSWORD}, "username"),
        ({"username": True, "password": PASSWORD}, "username"),
        ({"username": None, "password": PASSWORD}, "username"),
        ({"username": "mobile", "password": 12345678}, None),
        ({"username": "mobile", "password": ["x"]}, "password"),
        ({"username": "m" * 255, "password": PASSWORD}, "username"),
        ({"username": "mobile", "password": "p" * 1025}, "password"),
        ({"username": "", "password": ""}, "username"),
    ],
)
def test_hostile_login_input_is_a_400_naming_the_field(api_client, mobile, body, field):
    response = api_client.post(TOKEN_URL, body, format="json")

    assert response.status_code == 400
    if field:
        assert field in api_error_fields(response)
    assert not AuthToken.objects.exists()


def test_a_lone_surrogate_is_a_400_naming_the_field(api_client, mobile):
    body = '{"username": "\\ud800", "password": "correct horse battery staple"}'

    response = api_client.post(TOKEN_URL, body, content_type="application/json")

    assert response.status_code == 400
    assert "username" in api_error_fields(response)


@pytest.mark.parametrize("body", ["[1, 2]", '"mobile"', "null", "{not json"])
def test_a_body_that_is_not_an_object_is_400(api_client, mobile, body):
    response = api_client.post(TOKEN_URL, body, content_type="application/json")

    assert response.status_code == 400


@pytest.mark.parametrize(
    "header",
    [
        "Token",
        "Token a b",
        "Token " + "0" * 64,
        "Token " + "a\x00" * 32,
        "Token " + "é" * 64,
        "Token " + "f" * 100_000,
        "Token ../../etc/passwd",
        "Bearer " + "0" * 64,
    ],
)
def test_a_bad_authorization_header_is_401_not_an_error(db, header):
    client = APIClient()

    response = client.get("/api/v1/me/experiments", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401


@pytest.mark.parametrize("path", ["/api/v1/auth/logout", "/api/v1/auth/logout-all"])
def test_logout_with_a_malformed_token_is_401(db, path):
    response = with_token("\x00" * 64).post(path)

    assert response.status_code == 401
