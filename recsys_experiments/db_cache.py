"""Django's database cache with a one-statement `set`: the rate-limit counters are written on
every API request, and DatabaseCache.set costs five round trips (a COUNT(*) of the whole
table, BEGIN, SELECT, UPDATE or INSERT, COMMIT). Here `set` is one upsert, and the table is
counted (and culled past MAX_ENTRIES, exactly as Django culls) once every CULL_CHECK_EVERY
sets of a process instead of at every set: between two checks a process adds at most that
many rows, so the table holds at most MAX_ENTRIES + CULL_CHECK_EVERY x processes rows.
Reads, `add`, `touch`, deletes and culling itself are Django's."""

from __future__ import annotations

import base64
import itertools
import pickle
from datetime import UTC, datetime

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.db import DatabaseCache
from django.db import DatabaseError, connections, router
from django.utils.timezone import now as tz_now

CULL_CHECK_EVERY = 64


class UpsertDatabaseCache(DatabaseCache):
    def __init__(self, table, params):
        super().__init__(table, params)
        self._sets = itertools.count()

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        key = self.make_and_validate_key(key, version=version)
        timeout = self.get_backend_timeout(timeout)
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        table = connection.ops.quote_name(self._table)
        now = tz_now().replace(microsecond=0)
        expires = (
            datetime.max.replace(tzinfo=UTC)
            if timeout is None
            else datetime.fromtimestamp(timeout, tz=UTC)
        )
        encoded = base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")
        with connection.cursor() as cursor:
            if next(self._sets) % CULL_CHECK_EVERY == 0:
                cursor.execute(f"select count(*) from {table}")  # noqa: S608 - our table name
                count = cursor.fetchone()[0]
                if count > self._max_entries:
                    self._cull(db, cursor, now, count)
            try:
                cursor.execute(
                    f"insert into {table} (cache_key, value, expires) values (%s, %s, %s)"  # noqa: S608
                    " on conflict (cache_key) do update"
                    " set value = excluded.value, expires = excluded.expires",
                    [key, encoded, expires.replace(microsecond=0)],
                )
            except DatabaseError:
                # As Django's: a set that fails (a concurrent cull, say) is not an error.
                return False
        return True
