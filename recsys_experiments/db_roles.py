"""Run the rest of a transaction as one of the database roles, with the caller's user id.

    with acting_as(END_USER_ROLE, user.pk): ...   # RLS: only this user's rows
    with acting_as(SERVICE_ROLE, admin.pk): ...   # admin and ops: every row, via policies

The role and app.user_id are set with `set_config(..., true)` (SET LOCAL): they belong to the
transaction, so its commit or rollback always ends them, whatever the Python code does. This
must therefore run inside a transaction (requests are atomic). `acting_as` also restores the
previous pair on a normal exit, so later work in the same transaction (a test, a nested
service) runs as before. Nothing here keeps state beyond the `with` block: no generator and no
finaliser can touch the connection later, in another request.
"""

from __future__ import annotations

from django.db import DatabaseError, connection

END_USER_ROLE = "recsys_authenticated"
SERVICE_ROLE = "recsys_service"

RoleAndUser = tuple[str, str]


def set_transaction_role(role: str, user_id=None) -> RoleAndUser:
    """SET LOCAL the role and app.user_id for the rest of the current transaction; returns the
    pair in force before, in the same round trip."""
    if not connection.in_atomic_block:
        raise RuntimeError("set_transaction_role() needs a transaction: SET LOCAL would not last")
    with connection.cursor() as cursor:
        # The materialised CTE reads the old values before the select list sets the new ones.
        cursor.execute(
            """
            with previous as materialized (
                select current_setting('role') as role,
                       coalesce(current_setting('app.user_id', true), '') as user_id
            )
            select role, user_id, set_config('role', %s, true), set_config('app.user_id', %s, true)
            from previous
            """,
            [role, str(user_id) if user_id else ""],
        )
        previous_role, previous_user, _, _ = cursor.fetchone()
    return previous_role, previous_user


def restore_transaction_role(previous: RoleAndUser) -> None:
    """Put back a pair returned by set_transaction_role, unless the transaction is already
    doomed: its rollback undoes both settings by itself."""
    if connection.needs_rollback:
        return
    role, user_id = previous
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "select set_config('role', %s, true), set_config('app.user_id', %s, true)",
                [role, user_id],
            )
    except DatabaseError:
        # A failed transaction cannot run the reset; its rollback resets both settings.
        pass


class acting_as:
    """`with acting_as(role, user_id):` — set_transaction_role, then restore on exit."""

    def __init__(self, role: str, user_id=None):
        self.role = role
        self.user_id = user_id
        self.previous: RoleAndUser | None = None

    def __enter__(self) -> None:
        self.previous = set_transaction_role(self.role, self.user_id)

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self.previous is not None:
            restore_transaction_role(self.previous)
            self.previous = None
