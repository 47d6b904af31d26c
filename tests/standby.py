"""A real streaming hot standby of the test cluster as the `replica` database alias, for the
read-replica tests (tests/conftest.py: `streaming_standby`, `replica`)."""

from __future__ import annotations

import copy
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

CATCH_UP_TIMEOUT = 30


class Replica:
    """The `replica` alias on the standby, while a test runs."""

    def __init__(self, standby) -> None:
        self.standby = standby
        self.alias = settings.REPLICA_DATABASE

    @property
    def connection(self):
        return connections[self.alias]

    @classmethod
    def register(cls) -> None:
        """The alias, inert: on the default connection's server, where recsys_experiments.db
        ignores it, and a test mirror of "default" (the test runner never flushes it)."""
        replica = copy.deepcopy(connections[DEFAULT_DB_ALIAS].settings_dict)
        replica.update(ATOMIC_REQUESTS=False, TEST={**replica["TEST"], "MIRROR": "default"})
        connections.settings[settings.REPLICA_DATABASE] = replica

    @classmethod
    def unregister(cls) -> None:
        alias = settings.REPLICA_DATABASE
        if alias in connections.settings:
            connections[alias].close()
            del connections[alias]
            del connections.settings[alias]

    def attach(self) -> None:
        """Point the alias at the standby."""
        self.connection.close()
        self.saved = copy.deepcopy(self.connection.settings_dict)
        settings_dict = self.connection.settings_dict
        settings_dict.update(HOST=str(self.standby.socket_dir), PORT=str(self.standby.port))
        settings_dict["OPTIONS"].update(host=settings_dict["HOST"], port=self.standby.port)

    def detach(self) -> None:
        self.connection.close()
        self.connection.settings_dict.clear()
        self.connection.settings_dict.update(self.saved)

    def _primary_lsn(self) -> str:
        # The insert position, not pg_current_wal_lsn(): with synchronous_commit off (the
        # embedded cluster) a commit record can still sit in the WAL buffers, behind the
        # write position, and a catch-up to the write position would return before it.
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("select pg_current_wal_insert_lsn()::text")
            return cursor.fetchone()[0]

    def _standby_sql(self, sql: str, params=()):
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()

    def catch_up(self) -> None:
        """Wait until the standby has replayed everything the primary has written so far."""
        target = self._primary_lsn()
        deadline = time.monotonic() + CATCH_UP_TIMEOUT
        while True:
            (done,) = self._standby_sql(
                "select coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, false)", [target]
            )
            if done:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the standby did not replay up to {target} in time")
            time.sleep(0.05)

    @contextmanager
    def replay_paused(self):
        """The standby stops replaying (it still receives WAL): it shows the primary as it was."""
        self.catch_up()
        self._standby_sql("select pg_wal_replay_pause()")
        try:
            yield
        finally:
            self._standby_sql("select pg_wal_replay_resume()")

    @contextmanager
    def counting(self):
        """Every statement run on the replica alias in the block, in `queries` (a list)."""
        queries: list[str] = []

        def record(execute, sql, params, many, context):
            queries.append(sql)
            return execute(sql, params, many, context)

        with self.connection.execute_wrapper(record):
            yield queries
