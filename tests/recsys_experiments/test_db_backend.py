"""The per-request health check (recsys_experiments/db_backend): no round trip while the
connection is quiet, Django's `SELECT 1` check, which closes a dead connection, otherwise."""

import time

import pytest
from django.conf import settings
from django.db import connection, connections

from recsys_experiments.db_backend.base import DatabaseWrapper


def test_the_request_connections_use_this_backend():
    assert isinstance(connections["default"], DatabaseWrapper)
    assert isinstance(connections[settings.AUTOCOMMIT_DATABASE], DatabaseWrapper)
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


def open_and_idle():
    connection.ensure_connection()
    connection.health_check_done = False


@pytest.mark.django_db(transaction=True)
def test_a_quiet_idle_connection_passes_without_a_query(monkeypatch):
    open_and_idle()

    def no_select_1():
        raise AssertionError("the quiet connection was checked with a query")

    monkeypatch.setattr(connection, "is_usable", no_select_1)
    connection.close_if_health_check_failed()

    assert connection.connection is not None and connection.health_check_done


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_closed_is_closed_before_its_next_use():
    open_and_idle()
    with connection.cursor() as cursor:
        cursor.execute("select pg_backend_pid()")
        pid = cursor.fetchone()[0]
    other = connections[settings.AUTOCOMMIT_DATABASE]
    with other.cursor() as cursor:
        cursor.execute("select pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with other.cursor() as cursor:
            cursor.execute("select count(*) from pg_stat_activity where pid = %s", [pid])
            if cursor.fetchone()[0] == 0:
                break
        time.sleep(0.05)

    connection.health_check_done = False
    connection.close_if_health_check_failed()

    assert connection.connection is None  # closed; the next query connects anew
    with connection.cursor() as cursor:
        cursor.execute("select 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.django_db(transaction=True)
def test_a_connection_inside_a_transaction_gets_djangos_check(monkeypatch):
    open_and_idle()
    calls = []
    monkeypatch.setattr(connection, "is_usable", lambda: calls.append(1) or True)
    connection.set_autocommit(False)
    try:
        with connection.cursor() as cursor:
            cursor.execute("select 1")  # opens the transaction: not idle
        connection.health_check_done = False
        connection.close_if_health_check_failed()
    finally:
        connection.rollback()
        connection.set_autocommit(True)

    assert calls == [1]
