"""Login lockout (django-axes): repeated failures for one username from one address lock that
pair out, on the admin login and the API token endpoint alike."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories.users import UserFactory

PASSWORD = "correct horse battery staple"
ADDRESS = "203.0.113.7"


@pytest.fixture
def admin_user(db, settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    return UserFactory(username="boss", is_staff=True, is_superuser=True)


def admin_login(client, password, address=ADDRESS):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": "boss", "password": password},
        REMOTE_ADDR=address,
    )


def logged_in(client) -> bool:
    return client.get("/admin/").status_code == 200


def api_login(password, address=ADDRESS):
    return APIClient().post(
        "/api/v1/auth/token",
        {"username": "boss", "password": password},
        format="json",
        REMOTE_ADDR=address,
    )


def fail_admin_logins(client, times):
    return [admin_login(client, "wrong").status_code for _ in range(times)]


def test_repeated_failures_lock_the_admin_out_even_with_the_right_password(client, admin_user):
    statuses = fail_admin_logins(client, 3)

    locked = admin_login(client, PASSWORD)

    assert statuses == [200, 200, 429]
    assert locked.status_code == 429
    assert b"Login locked" in locked.content
    assert not logged_in(client)


def test_after_the_cooloff_the_right_password_works_again(client, admin_user):
    fail_admin_logins(client, 3)
    last_failure = AccessAttempt.objects.get().attempt_time
    AccessAttempt.objects.update(attempt_time=last_failure - timedelta(minutes=16))

    response = admin_login(client, PASSWORD)

    assert response.status_code == 302
    assert logged_in(client)


def test_an_admin_can_be_unlocked_by_command(client, admin_user):
    fail_admin_logins(client, 3)

    call_command("axes_reset_username", "boss", verbosity=0)

    assert admin_login(client, PASSWORD).status_code == 302


def test_the_lock_holds_only_for_that_address(client, admin_user):
    fail_admin_logins(client, 3)

    response = admin_login(client, PASSWORD, address="198.51.100.1")

    assert response.status_code == 302


def test_a_success_before_the_limit_resets_the_count(client, admin_user):
    fail_admin_logins(client, 2)
    assert admin_login(client, PASSWORD).status_code == 302
    client.logout()

    assert fail_admin_logins(client, 2) == [200, 200]


def test_failed_api_logins_lock_the_admin_login_too(client, admin_user):
    statuses = [api_login("wrong").status_code for _ in range(3)]

    assert statuses == [400, 400, 429]
    assert admin_login(client, PASSWORD).status_code == 429


def test_a_locked_out_api_login_is_429_with_retry_after(client, admin_user):
    fail_admin_logins(client, 3)

    response = api_login(PASSWORD)

    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    assert "token" not in response.json()


def test_admins_see_lockouts_and_tokens_in_the_admin(client, admin_user):
    fail_admin_logins(client, 3)
    AuthToken.objects.create(admin_user)
    staff = Client()
    staff.force_login(UserFactory(is_staff=True, is_superuser=True))

    attempts = staff.get("/admin/axes/accessattempt/")
    tokens = staff.get("/admin/knox/authtoken/")

    assert attempts.status_code == tokens.status_code == 200
    assert b"boss" in attempts.content
    assert b"boss" in tokens.content
