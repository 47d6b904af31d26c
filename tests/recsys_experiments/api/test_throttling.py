"""Rate limits: 429 with Retry-After, counted in the database cache that every worker shares."""

import pytest
from django.conf import settings
from django.db import connections
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories.users import UserFactory

PASSWORD = "correct horse battery staple"
TOKEN_URL = "/api/v1/auth/token"


@pytest.fixture
def rates(settings):
    def set_rates(**limits):
        settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, **limits}

    return set_rates


WRONG = "wrong"


def log_in(username, password=WRONG, address="203.0.113.7", **headers):
    return APIClient().post(
        TOKEN_URL,
        {"username": username, "password": password},
        format="json",
        REMOTE_ADDR=address,
        **headers,
    )


def assert_throttled(response):
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60


def stored_counter_keys() -> list[str]:
    with connections[settings.AUTOCOMMIT_DATABASE].cursor() as cursor:
        cursor.execute("select cache_key from django_cache")
        return [key for (key,) in cursor.fetchall()]


def test_login_attempts_per_username_from_any_address(rates, db):
    rates(login_username="3/min")
    UserFactory(username="mobile", email="mobile@example.com")
    # Failed logins count even though their 400 rolls the request's transaction back.
    failures = [log_in("mobile", address=f"203.0.113.{n}").status_code for n in range(3)]

    fourth = log_in("Mobile ", password=PASSWORD, address="198.51.100.1")

    assert failures == [400, 400, 400]
    assert_throttled(fourth)
    assert log_in("someone_else", address="198.51.100.1").status_code == 400


def test_a_numeric_username_is_counted_as_its_text(rates, db):
    rates(login_username="2/min")
    UserFactory(username="1234")

    statuses = [log_in(1234).status_code, log_in("1234").status_code, log_in(1234).status_code]

    assert statuses == [400, 400, 429]


def test_login_attempts_per_address_whatever_the_username(rates, db):
    rates(login_address="3/min")
    user = UserFactory(username="mobile")
    failures = [log_in(f"guess{n}").status_code for n in range(3)]

    fourth = log_in("mobile", password=PASSWORD)

    assert failures == [400, 400, 400]
    assert_throttled(fourth)
    assert log_in(user.username, password=PASSWORD, address="198.51.100.1").status_code == 200


def test_counters_live_in_the_shared_cache_table_without_raw_logins(rates, db):
    rates(login_username="3/min", login_address="3/min")
    UserFactory(username="mobile")

    log_in("mobile@example.com", address="203.0.113.7")

    keys = stored_counter_keys()
    assert len(keys) == 2
    assert not any("mobile" in key or "203.0.113.7" in key for key in keys)


def test_x_forwarded_for_is_ignored_without_a_trusted_proxy(rates, db, settings):
    rates(login_address="2/min")
    settings.TRUSTED_PROXY_COUNT = 0

    statuses = [
        log_in(f"guess{n}", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code for n in range(3)
    ]

    assert statuses == [400, 400, 429]


def test_behind_a_trusted_proxy_the_address_it_saw_is_the_client(rates, db, settings):
    rates(login_address="2/min")
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"

    # The client forges the left-most entries; the proxy appends the address it saw.
    forged = [
        log_in(f"guess{n}", address=proxy, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.7")
        for n in range(3)
    ]
    another_client = log_in("guess", address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.9")

    assert [response.status_code for response in forged] == [400, 400, 429]
    assert another_client.status_code == 400


@pytest.mark.parametrize("forwarded", ["not-an-address", "", ",,,", "\x00", "1.2.3.4.5"])
def test_a_garbage_forwarded_header_falls_back_to_the_peer_address(rates, db, settings, forwarded):
    rates(login_address="1/min")
    settings.TRUSTED_PROXY_COUNT = 1

    first = log_in("guess", HTTP_X_FORWARDED_FOR=forwarded)
    second = log_in("guess", HTTP_X_FORWARDED_FOR=forwarded)

    assert first.status_code == 400
    assert_throttled(second)


def authenticated(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user)[1]}")
    return client


def test_deck_requests_per_user(rates, catalog):
    rates(deck="2/min")
    alice, bob = authenticated(UserFactory()), authenticated(UserFactory())

    allowed = [alice.post("/api/v1/deck", {"limit": 3}, format="json") for _ in range(2)]
    third = alice.post("/api/v1/deck", {"limit": 3}, format="json")

    assert [response.status_code for response in allowed] == [200, 200]
    assert_throttled(third)
    assert bob.post("/api/v1/deck", {"limit": 3}, format="json").status_code == 200


def test_bad_deck_requests_count_too(rates, catalog):
    rates(deck="2/min")
    alice = authenticated(UserFactory())

    bad = [alice.post("/api/v1/deck", {"limit": 0}, format="json") for _ in range(2)]

    assert [response.status_code for response in bad] == [400, 400]
    assert_throttled(alice.post("/api/v1/deck", {"limit": 3}, format="json"))


def test_outcome_requests_per_user(rates, db):
    rates(outcomes="1/min")
    alice, bob = authenticated(UserFactory()), authenticated(UserFactory())
    empty = {"outcomes": []}

    first = alice.post("/api/v1/outcomes", empty, format="json")
    second = alice.post("/api/v1/outcomes", empty, format="json")

    assert first.status_code == 400
    assert_throttled(second)
    assert bob.post("/api/v1/outcomes", empty, format="json").status_code == 400


def test_an_unauthenticated_deck_request_is_401_before_any_limit(rates, db):
    rates(deck="1/min")

    responses = [APIClient().post("/api/v1/deck", {}, format="json") for _ in range(3)]

    assert [response.status_code for response in responses] == [401, 401, 401]
