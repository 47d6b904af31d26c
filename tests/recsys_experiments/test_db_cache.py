"""The database cache behind the rate limits (recsys_experiments/db_cache.py): `set` is one
upsert, and the table is still culled past MAX_ENTRIES."""

from django.conf import settings
from django.db import connections
from django.test.utils import CaptureQueriesContext

from recsys_experiments.db_cache import CULL_CHECK_EVERY, UpsertDatabaseCache


def cache(max_entries: int = 1000) -> UpsertDatabaseCache:
    return UpsertDatabaseCache("django_cache", {"OPTIONS": {"MAX_ENTRIES": max_entries}})


def rows() -> int:
    with connections[settings.AUTOCOMMIT_DATABASE].cursor() as cursor:
        cursor.execute("select count(*) from django_cache")
        return cursor.fetchone()[0]


def test_set_stores_overwrites_and_expires(db):
    counters = cache()
    counters.set("a", [1.5, 2.5], 60)
    counters.set("a", [3.5], 60)
    counters.set("gone", "x", -1)

    assert counters.get("a") == [3.5]
    assert counters.get("gone") is None
    assert counters.get_many(["a", "gone"]) == {"a": [3.5]}


def test_a_set_is_one_statement_between_cull_checks(db):
    counters = cache()
    counters.set("first", 1)  # a process's first set counts the table
    with CaptureQueriesContext(connections[settings.AUTOCOMMIT_DATABASE]) as queries:
        counters.set("second", 2)
        counters.set("second", 3)

    assert len(queries) == 2
    assert counters.get("second") == 3


def test_the_table_is_culled_past_max_entries(db):
    counters = cache(max_entries=10)
    for n in range(CULL_CHECK_EVERY):
        counters.set(f"k{n}", n, 60)
    assert rows() == CULL_CHECK_EVERY

    counters.set("one-more", 1, 60)  # the next check culls, as Django's DatabaseCache does

    assert rows() < CULL_CHECK_EVERY
