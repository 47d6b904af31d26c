"""ApiTokenAuthentication: knox's token semantics, with the lookup, the refresh and the
end-user role in one statement (accounts/sql/token_auth.v1.sql)."""

from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIClient

from recsys_experiments.accounts.authentication import ApiTokenAuthentication
from recsys_experiments.db_roles import END_USER_ROLE, restore_transaction_role
from tests.factories.users import UserFactory


def role_and_user() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "select current_setting('role'), coalesce(current_setting('app.user_id', true), '')"
        )
        return cursor.fetchone()


def with_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def authenticate(key: str, role: str | None = END_USER_ROLE):
    authenticator = ApiTokenAuthentication(database_role=role)
    user, token = authenticator.authenticate_credentials(key.encode())
    return authenticator, user, token


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


def test_a_live_token_gives_its_user_and_sets_that_users_role_for_the_transaction(alice):
    bob = UserFactory()
    stored, key = AuthToken.objects.create(alice)
    AuthToken.objects.create(bob)

    with transaction.atomic():
        authenticator, user, token = authenticate(key)
        assert user == alice and user.username == "alice" and user.is_active
        assert (token.user, token.digest, token.token_key) == (alice, stored.digest, key[:15])
        assert authenticator.previous_role == ("none", "")
        assert role_and_user() == (END_USER_ROLE, str(alice.pk))
        # What RoleScopedApi.dispatch does when the transaction outlives the request.
        restore_transaction_role(authenticator.previous_role)
        assert role_and_user() == ("none", "")


def test_without_a_role_or_outside_a_transaction_only_the_user_is_found(alice):
    _, key = AuthToken.objects.create(alice)

    with transaction.atomic():
        authenticator, user, _ = authenticate(key, role=None)
        assert user == alice and authenticator.previous_role is None
        assert role_and_user() == ("none", "")


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_no_role_is_set():
    user = UserFactory()
    _, key = AuthToken.objects.create(user)

    authenticator, found, _ = authenticate(key)

    assert found == user and authenticator.previous_role is None
    assert role_and_user() == ("none", "")


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda key: key[:-1] + ("0" if key[-1] != "0" else "1"), id="wrong-digest"),
        pytest.param(lambda key: ("0" if key[0] != "0" else "1") + key[1:], id="wrong-prefix"),
    ],
)
def test_a_key_that_is_not_a_live_token_is_refused_and_sets_no_role(alice, spoil):
    _, key = AuthToken.objects.create(alice)

    with transaction.atomic():
        with pytest.raises(AuthenticationFailed):
            authenticate(spoil(key))
        assert role_and_user() == ("none", "")


def test_a_revoked_token_is_refused(alice):
    token, key = AuthToken.objects.create(alice)
    token.delete()

    with transaction.atomic(), pytest.raises(AuthenticationFailed):
        authenticate(key)


def test_an_expired_token_is_refused_deleted_and_sets_no_role(alice):
    token, key = AuthToken.objects.create(alice, expiry=timedelta(hours=1))
    AuthToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(seconds=1))

    with transaction.atomic():
        with pytest.raises(AuthenticationFailed):
            authenticate(key)
        assert role_and_user() == ("none", "")
        # As knox's cleanup did (the request's 401 rolls it back; the next login deletes it).
        assert not AuthToken.objects.filter(pk=token.pk).exists()


def test_an_inactive_users_token_is_refused_and_sets_no_role(alice):
    _, key = AuthToken.objects.create(alice)
    alice.is_active = False
    alice.save()

    with transaction.atomic():
        with pytest.raises(AuthenticationFailed, match="inactive"):
            authenticate(key)
        assert role_and_user() == ("none", "")


def test_use_extends_the_expiry_at_most_once_per_refresh_interval(alice, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": timedelta(hours=2)}
    token, key = AuthToken.objects.create(alice)
    nearly = timezone.now() + timedelta(hours=2) - timedelta(seconds=30)
    AuthToken.objects.filter(pk=token.pk).update(expiry=nearly)

    with transaction.atomic():
        _, _, found = authenticate(key, role=None)
    token.refresh_from_db()
    assert token.expiry == nearly == found.expiry  # less than MIN_REFRESH_INTERVAL: no write

    AuthToken.objects.filter(pk=token.pk).update(expiry=timezone.now() + timedelta(minutes=5))
    with transaction.atomic():
        _, _, found = authenticate(key, role=None)
    token.refresh_from_db()
    assert timedelta(hours=1, minutes=59) < token.expiry - timezone.now() <= timedelta(hours=2)
    assert found.expiry == token.expiry


def test_the_refresh_stops_at_auto_refresh_max_ttl(alice, settings):
    settings.REST_KNOX = {
        **settings.REST_KNOX,
        "TOKEN_TTL": timedelta(hours=2),
        "AUTO_REFRESH_MAX_TTL": timedelta(hours=3),
    }
    token, key = AuthToken.objects.create(alice)
    AuthToken.objects.filter(pk=token.pk).update(
        created=timezone.now() - timedelta(hours=2), expiry=timezone.now() + timedelta(minutes=5)
    )

    with transaction.atomic():
        authenticate(key, role=None)
    token.refresh_from_db()
    assert token.expiry == token.created + timedelta(hours=3)


def test_a_never_expiring_token_is_not_refreshed(alice):
    token, key = AuthToken.objects.create(alice, expiry=None)

    with transaction.atomic():
        _, user, _ = authenticate(key, role=None)
    token.refresh_from_db()
    assert user == alice and token.expiry is None


def test_the_logout_endpoint_revokes_the_token_it_was_called_with(alice):
    _, key = AuthToken.objects.create(alice)

    assert with_token(key).post("/api/v1/auth/logout").status_code == 204
    assert not AuthToken.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_end_user_request_is_the_token_statement_and_its_work_on_the_request_connection(
    settings,
):
    """BEGIN, the token with the role, the view's work, COMMIT; nothing on the counters'
    connection with the throttles off. The role ends with the request's transaction."""
    from tests.factories.catalog import MediaItemFactory

    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "deck": None}
    MediaItemFactory.create_batch(5)
    user = UserFactory()
    _, key = AuthToken.objects.create(user)
    client = with_token(key)

    default = CaptureQueriesContext(connections["default"])
    counters = CaptureQueriesContext(connections["autocommit"])
    with default, counters:
        response = client.post("/api/v1/deck", {"limit": 3}, format="json")

    assert response.status_code == 200, response.content
    statements = [query["sql"] for query in default.captured_queries]
    assert len(statements) == 4, statements
    assert statements[0] == "BEGIN" and statements[3] == "COMMIT"
    assert "rec_token_authenticate" in statements[1]
    assert "media_swipe_deck_v1" in statements[2]
    assert len(counters) == 0
    assert role_and_user() == ("none", "")


@pytest.mark.parametrize("path", ["/api/v1/deck", "/api/v1/outcomes", "/api/v1/me/experiments"])
def test_a_bad_token_on_an_end_user_endpoint_is_401_in_the_error_shape(db, path):
    for header in ("Token " + "ab" * 32, "Token " + "zz" * 32, "Token a\x00b", "Token"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        response = client.post(path, {}, format="json")
        if path.endswith("experiments"):
            response = client.get(path)
        assert response.status_code == 401, (header, response.content)
        assert response.json()["code"] == "not_authenticated"
        assert response["WWW-Authenticate"] == "Token"
