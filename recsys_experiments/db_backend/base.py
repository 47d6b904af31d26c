"""Django's PostgreSQL backend with a health check that costs no round trip while the
connection is quiet (settings: DATABASES[...]["ENGINE"], CONN_HEALTH_CHECKS).

Django checks a reused connection once per request with `SELECT 1`: one more round trip on
every request. A connection the server (or PgBouncer) has closed or is closing has something
to read: the FATAL message of a terminated backend, or end-of-file. So the check first polls
the idle connection's socket without blocking; only when there is something to read (or the
connection is not idle, or the poll is not possible) does it run Django's `SELECT 1` check,
which then closes a dead connection as before. A connection whose peer vanished without a
word (no FIN: a partitioned network) passes both kinds of check alike until its first query
fails. The check after an error (`close_if_unusable_or_obsolete`) is Django's, unchanged."""

from __future__ import annotations

import select

import psycopg
from django.db.backends.postgresql import base
from psycopg import pq


def _quiet(connection) -> bool:
    """True when the psycopg connection is open, idle and has nothing to read."""
    if connection.closed or connection.broken:
        return False
    pgconn = connection.pgconn
    if pgconn.status != pq.ConnStatus.OK or pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return False
    try:
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
    except (AttributeError, OSError, ValueError, psycopg.Error):
        return False  # no poll() here, or no socket: Django's own check decides


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self):
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and not self.pool
            and _quiet(self.connection)
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
