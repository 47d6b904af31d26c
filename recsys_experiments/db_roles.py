"""Run the rest of a transaction as one of the database roles, with the caller's user id.

    with acting_as(END_USER_ROLE, user.pk): ...   # RLS: only this user's rows
    with acting_as(SERVICE_ROLE, admin.pk): ...   # admin and ops: every row, via policies

SET LOCAL ROLE and app.user_id are transaction-scoped, so this must run inside a transaction
(requests are atomic); on exit both are restored, so later work in the same transaction (a
test, a nested service) runs as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from django.db import DatabaseError, connection

END_USER_ROLE = "recsys_authenticated"
SERVICE_ROLE = "recsys_service"


def _set(role: str, user_id: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "select set_config('role', %s, true), set_config('app.user_id', %s, true)",
            [role, user_id],
        )


@contextmanager
def acting_as(role: str, user_id=None) -> Iterator[None]:
    if not connection.in_atomic_block:
        raise RuntimeError("acting_as() needs a transaction: SET LOCAL would not last")
    with connection.cursor() as cursor:
        cursor.execute("select current_setting('role'), current_setting('app.user_id', true)")
        previous_role, previous_user = cursor.fetchone()
    _set(role, str(user_id) if user_id else "")
    try:
        yield
    finally:
        # After a database error the transaction is rolled back, which undoes both settings.
        if not connection.needs_rollback:
            with suppress(DatabaseError):
                _set(previous_role, previous_user or "")
