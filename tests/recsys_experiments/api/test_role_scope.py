"""The end-user role never outlives its request: a database fault inside an end-user view
leaves the connection on its login role with no user id, and nothing left behind by that
request can switch a later transaction's role when the garbage collector runs."""

from __future__ import annotations

import gc
import logging

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from recsys_experiments.db_roles import END_USER_ROLE, acting_as
from tests.factories.users import UserFactory


def role_and_user() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "select current_setting('role'), coalesce(current_setting('app.user_id', true), '')"
        )
        return cursor.fetchone()


def outcome(event_id: str, media_item_id: int) -> dict:
    return {
        "event_id": event_id,
        "rec_request_id": "00000000-0000-4000-8000-000000000001",
        "media_item_id": media_item_id,
        "outcome_type": "like",
    }


@pytest.fixture
def as_in_a_worker():
    """What a failed request leaves in reference cycles (its traceback, frames and view) stays
    alive until the test's own gc.collect(), as it may in a worker between requests. The error
    log record is dropped: pytest's log capture would keep the traceback reachable."""
    request_log = logging.getLogger("django.request")
    gc.collect()
    gc.disable()
    request_log.disabled = True
    yield
    request_log.disabled = False
    gc.enable()


@pytest.mark.django_db(transaction=True)
def test_a_fault_inside_an_end_user_view_leaves_no_role_behind(catalog, as_in_a_worker):
    user, other = UserFactory(), UserFactory()
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(user)
    with connection.cursor() as cursor:
        cursor.execute("alter table rec_outcomes rename to rec_outcomes_away")
    try:
        response = client.post(
            "/api/v1/outcomes", {"outcomes": [outcome("e1", catalog[0].pk)]}, format="json"
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("alter table rec_outcomes_away rename to rec_outcomes")

    status, error = response.status_code, response.json()
    del response  # it references the view, as nothing does once a worker has answered
    assert status == 500
    assert error["code"] == "server_error"
    assert not connection.in_atomic_block
    assert role_and_user() == ("none", "")

    with transaction.atomic(), acting_as(END_USER_ROLE, other.pk):
        gc.collect()
        assert role_and_user() == (END_USER_ROLE, str(other.pk))
        with connection.cursor() as cursor:
            cursor.execute("select current_user")
            assert cursor.fetchone()[0] == END_USER_ROLE
    assert role_and_user() == ("none", "")


@pytest.mark.django_db(transaction=True)
def test_an_error_response_from_an_end_user_view_ends_the_role_with_the_transaction(catalog):
    user = UserFactory()
    client = APIClient()
    client.force_authenticate(user)

    response = client.post("/api/v1/deck", {"limit": 500}, format="json")

    assert response.status_code == 400
    assert role_and_user() == ("none", "")
    gc.collect()
    assert role_and_user() == ("none", "")


def test_a_request_inside_a_longer_transaction_restores_the_callers_role(app_client, catalog):
    # Tests (and any caller's own transaction) continue after the request: they get their
    # role back, not the end user's.
    assert app_client.post("/api/v1/deck", {"limit": 3}, format="json").status_code == 200

    assert role_and_user() == ("none", "")
