"""Scratch databases: a freshly migrated, empty database on the same server for the block,
while the live database (and the test's open transaction on it) waits untouched."""

import pytest
from django.db import connection, connections

from deck.lab.scratch import (
    SCRATCH_PREFIX,
    TEMPLATE_PREFIX,
    ScratchDatabaseError,
    _create,
    _maintenance,
    schema_fingerprint,
    scratch_database,
    scratch_drop,
)
from deck.models import MediaItem
from telemetry.models import Metric
from tests.factories.catalog import MediaItemFactory


def database_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("select exists (select 1 from pg_database where datname = %s)", [name])
        return cursor.fetchone()[0]


def current_database(alias="default") -> str:
    with connections[alias].cursor() as cursor:
        cursor.execute("select current_database()")
        return cursor.fetchone()[0]


def test_the_block_talks_to_an_empty_migrated_database_and_the_live_one_waits(db):
    MediaItemFactory.create_batch(3)
    live = current_database()

    with scratch_database() as scratch:
        assert current_database() == scratch.name
        assert current_database("autocommit") == scratch.name
        assert scratch.name.startswith(SCRATCH_PREFIX)
        # Migrated (the metric catalogue is seeded by a migration) and empty of live rows.
        assert MediaItem.objects.count() == 0
        assert Metric.objects.filter(key="like_rate").exists()
        MediaItemFactory.create_batch(2)

    # The test's uncommitted rows are still there: its transaction just waited.
    assert current_database() == live
    assert MediaItem.objects.count() == 3
    assert not database_exists(scratch.name)


def test_keep_leaves_the_database_for_inspection(db):
    with scratch_database(keep=True) as scratch:
        MediaItemFactory.create_batch(2)
    try:
        assert database_exists(scratch.name)
        with scratch_database() as other:
            assert other.name != scratch.name
            assert MediaItem.objects.count() == 0
    finally:
        scratch_drop(scratch.name)
    assert not database_exists(scratch.name)


def test_an_error_inside_the_block_drops_the_database_and_restores_the_connection(db):
    live = current_database()
    with pytest.raises(ZeroDivisionError), scratch_database() as scratch:
        MediaItemFactory()
        1 / 0  # noqa: B018
    assert current_database() == live
    assert not database_exists(scratch.name)


def test_a_stale_template_is_dropped_and_the_current_one_kept(db):
    with _maintenance() as cursor:
        cursor.execute(f"create database {TEMPLATE_PREFIX}0000stale")
    with scratch_database():
        pass
    with connection.cursor() as cursor:
        cursor.execute(
            "select datname from pg_database where starts_with(datname, %s)", [TEMPLATE_PREFIX]
        )
        templates = [row[0] for row in cursor.fetchall()]
    assert templates == [TEMPLATE_PREFIX + schema_fingerprint()[:24]]


def test_a_role_without_createdb_gets_one_line_naming_the_fix(db):
    with _maintenance() as cursor:
        cursor.execute("set role recsys_authenticated")
        with pytest.raises(ScratchDatabaseError, match="lacks CREATEDB") as raised:
            _create(cursor, SCRATCH_PREFIX + "denied")
    assert "ALTER ROLE" in str(raised.value) and "\n" not in str(raised.value)
    assert not database_exists(SCRATCH_PREFIX + "denied")
