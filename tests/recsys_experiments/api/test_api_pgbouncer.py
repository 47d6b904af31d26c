"""Run by `make test`'s last step, where every API test file goes through PgBouncer in
transaction mode (config/localdb.py PgBouncer; RECSYS_PGBOUNCER_SOCKET is set there): after
real, committed API requests as an app user and as staff, no server connection of the pool
keeps a role or an app.user_id. Skipped in the ordinary run (no pooler to go through)."""

from __future__ import annotations

import os
import time

import pytest
from django.db import connection
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories.users import UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("RECSYS_PGBOUNCER_SOCKET"),
        reason="runs in make test's PgBouncer step (make test-pgbouncer)",
    ),
]

# Statements enough to visit every server connection of the pool several times over (PgBouncer
# hands them out round-robin, server_round_robin = 1).
VISITS = 24


def session_state() -> list[tuple]:
    """(backend pid, role, app.user_id) seen by VISITS autocommit statements: each is a
    transaction of its own, on whichever server connection the pool hands out."""
    seen = []
    for _ in range(VISITS):
        with connection.cursor() as cursor:
            cursor.execute(
                "select pg_backend_pid(), current_setting('role'), "
                "coalesce(current_setting('app.user_id', true), '')"
            )
            seen.append(cursor.fetchone())
    return seen


def test_the_pool_is_really_shared(db):
    assert connection.get_autocommit()
    assert connection.settings_dict["OPTIONS"]["host"] == os.environ["RECSYS_PGBOUNCER_SOCKET"]
    assert connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] is True
    # PgBouncer opens the pool's other server connections within a second or two.
    deadline = time.monotonic() + 10
    while len({pid for pid, _, _ in session_state()}) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len({pid for pid, _, _ in session_state()}) > 1


def test_a_session_level_setting_would_be_seen_leaking(db):
    """The check below can fail: a SET without LOCAL stays on its server connection."""
    with connection.cursor() as cursor:
        cursor.execute("select set_config('app.user_id', 'leaked', false)")
    try:
        assert "leaked" in {user_id for _, _, user_id in session_state()}
    finally:
        for _ in range(VISITS):
            with connection.cursor() as cursor:
                cursor.execute("reset all")
    assert "leaked" not in {user_id for _, _, user_id in session_state()}


def test_no_role_or_user_id_outlives_an_api_request(catalog, staff_user):
    app_user = UserFactory()
    _, key = AuthToken.objects.create(user=app_user)
    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    staff = APIClient()
    staff.force_authenticate(staff_user)
    for _ in range(3):
        deck = app.post("/api/v1/deck", {"limit": 3}, format="json")
        assert deck.status_code == 200, deck.content
        assert app.get("/api/v1/me/experiments").status_code == 200
        assert staff.get("/api/v1/admin/experiments").status_code == 200

    assert {(role, user_id) for _, role, user_id in session_state()} == {("none", "")}
