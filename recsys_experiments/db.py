"""Reads that may go to a read replica (settings.REPLICA_DATABASE, set from
DATABASE_REPLICA_URL; docs/scaling.md, "Read replicas").

    with reading_cursor() as cursor: ...   # one raw read: the replica if configured
    with reading(): ...                    # a block of reads (raw and ORM) in one snapshot

Both run on the replica only when it is configured AND serves the database the default
connection is on: inside a lab scratch database (deck/lab/scratch.py swaps the default
connection onto another database) every read stays on the default connection, which is
where the simulation just wrote. Without a replica both are plain reads on "default".

On the replica, the block is one read-only transaction that runs with the role and app.user_id
in force on the default connection's transaction (db_roles.py sets them with SET LOCAL), so row
level security judges a replica read exactly as it would the same read on the primary: an admin
page's read runs as the service role with the admin's id, a command's as the service role.
Inside `reading()` the router (config/db_routers.py) sends ORM reads to the replica too; writes
never go there (db_for_write), and the replica itself is read-only (a hot standby).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction

logger = logging.getLogger(__name__)

# The alias the router sends ORM reads to while a `reading()` block is open; None outside.
reading_block: ContextVar[str | None] = ContextVar("reading_block", default=None)


def replica_alias() -> str | None:
    """The replica's alias when reads may go there now, else None: it must serve the default
    connection's database (not while a scratch database stands in for it) from another server
    (not when the test runner made it a mirror of the default connection)."""
    alias = configured_replica()
    if alias is None:
        return None
    replica = connections[alias].settings_dict
    if replica.get("NAME") != connections[DEFAULT_DB_ALIAS].settings_dict.get("NAME"):
        return None
    return alias


def configured_replica() -> str | None:
    """The replica's alias when one is configured on a server of its own."""
    alias = settings.REPLICA_DATABASE
    if alias not in connections.settings:
        return None
    if server(connections[alias].settings_dict) == server(
        connections[DEFAULT_DB_ALIAS].settings_dict
    ):
        return None
    return alias


def server(settings_dict: dict) -> tuple[str, str]:
    """(host, port) a connection's settings reach: HOST/PORT, else the URL's ?host=&port=
    (django-environ puts those in OPTIONS)."""
    options = settings_dict.get("OPTIONS") or {}
    host = settings_dict.get("HOST") or options.get("host") or ""
    port = settings_dict.get("PORT") or options.get("port") or ""
    return str(host), str(port)


def reading_alias() -> str:
    return replica_alias() or DEFAULT_DB_ALIAS


def reading_connection():
    """The connection reads go to (the replica's when configured, see `replica_alias`)."""
    return connections[reading_alias()]


def _default_role() -> tuple[str, str] | None:
    """The role and app.user_id SET LOCAL on the default connection, when it is in a
    transaction (outside one, no SET LOCAL is in force: the login role applies)."""
    if not connection.in_atomic_block:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "select current_setting('role'), coalesce(current_setting('app.user_id', true), '')"
        )
        return cursor.fetchone()


@contextmanager
def reading() -> Iterator[str]:
    """A block of reads on the replica (when configured) in one read-only transaction, as the
    default connection's role and user; yields the alias read from. Nested blocks join the
    outer one."""
    alias = replica_alias()
    if alias is None or reading_block.get() is not None:
        yield reading_block.get() or DEFAULT_DB_ALIAS
        return
    try:
        connections[alias].ensure_connection()
    except DatabaseError:
        # A replica that does not answer costs the primary a read, not the page its answer
        # (the diagnostics page shows it unreachable).
        logger.warning("the read replica %s does not answer: reading the primary", alias)
        yield DEFAULT_DB_ALIAS
        return
    role = _default_role()
    with transaction.atomic(using=alias):
        with connections[alias].cursor() as cursor:
            cursor.execute("set transaction read only")
            if role is not None:
                cursor.execute(
                    "select set_config('role', %s, true), set_config('app.user_id', %s, true)",
                    list(role),
                )
        token = reading_block.set(alias)
        try:
            yield alias
        finally:
            reading_block.reset(token)


@contextmanager
def reading_cursor() -> Iterator:
    """A cursor for one read: on the replica inside `reading()` (joined) or in a block of its
    own; on the default connection when no replica applies."""
    with reading() as alias, connections[alias].cursor() as cursor:
        yield cursor


def replica_status() -> dict | None:
    """The replica's lag, for the diagnostics page; None when no replica is configured.

    `bytes_behind`: WAL the primary has written that the replica has not replayed (0 when
    caught up); `replay_age_seconds`: time since the last transaction the replica replayed
    (grows on an idle primary too, so read it with bytes_behind); `error`: the replica did
    not answer."""
    alias = configured_replica()
    if alias is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute("select pg_current_wal_lsn()::text")
        (primary_lsn,) = cursor.fetchone()
    try:
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            cursor.execute(
                """
                select pg_is_in_recovery(),
                       greatest(pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn()), 0)::bigint,
                       extract(epoch from now() - pg_last_xact_replay_timestamp())::float8
                """,
                [primary_lsn],
            )
            in_recovery, behind, age = cursor.fetchone()
    except DatabaseError as error:  # a replica that does not answer is shown, not raised
        return {"alias": alias, "error": str(error).strip().splitlines()[0][:200]}
    return {
        "alias": alias,
        "in_recovery": in_recovery,
        "bytes_behind": behind,
        "replay_age_seconds": age,
        "error": None,
    }
