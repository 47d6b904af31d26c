"""Monthly partitions of the four event tables (telemetry/sql/partitions.v1.sql and
`manage.py partitions`): pruning, the conversion both ways, per-user event ids unique across
partitions, and the maintenance command."""

import csv
import json
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from recsys_experiments.db_roles import END_USER_ROLE, acting_as
from recsys_experiments.lib.errors import IllegalTransition
from telemetry.partitions import partitions_ensure, partitions_list
from telemetry.services import conversions_record, outcomes_record
from tests.factories.catalog import MediaItemFactory
from tests.factories.users import UserFactory
from tests.helpers import command_fails, command_output

SQL_DIR = Path(__file__).resolve().parents[2] / "telemetry" / "sql"
TABLES = {
    "rec_impressions": "created_at",
    "rec_outcomes": "created_at",
    "rec_conversions": "occurred_at",
    "rec_exposures": "occurred_at",
}


def rows(query, params=()):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def scalar(query, params=()):
    return rows(query, params)[0][0]


def month_of(moment: datetime) -> str:
    return moment.strftime("%Y%m")


def impression(user, item, at, request=None):
    request = request or uuid.uuid4()
    rows(
        "insert into rec_impressions (user_id, rec_request_id, media_item_id, position, source, "
        "request_context, created_at) values (%s, %s, %s, 1, 'cf', "
        '\'{"experiments": {"e": "a"}}\', %s) returning id',
        [user.pk, request, item.pk, at],
    )
    return request


def like(event_id, request, item, occurred_at=None):
    item = {
        "event_id": event_id,
        "rec_request_id": str(request),
        "media_item_id": item.pk,
        "outcome_type": "like",
    }
    if occurred_at:
        item["occurred_at"] = occurred_at.isoformat()
    return item


def record_outcomes(user, items):
    """As the API does: as the end user, whose RLS and grants apply (not rec_event_keys')."""
    with acting_as(END_USER_ROLE, user.pk):
        return outcomes_record(user=user, outcomes=items)


def purchase(event_id, occurred_at: datetime, value=9.5):
    return {
        "event_id": event_id,
        "metric_name": "purchase",
        "value": value,
        "occurred_at": occurred_at.isoformat(),
    }


def partition_of(table, where, params=()):
    return scalar(f"select tableoid::regclass::text from {table} where {where}", params)


# --- The shape ----------------------------------------------------------------------------


def test_the_four_tables_are_partitioned_with_this_and_next_month(db):
    now = timezone.now()
    nxt = (now.replace(day=1) + timedelta(days=32)).replace(day=1)
    listed = partitions_list()

    for table, column in TABLES.items():
        assert scalar("select relkind from pg_class where relname = %s", [table]) == "p"
        assert scalar("select pg_get_partkeydef(%s::regclass)", [table]) == f"RANGE ({column})"
        names = {p["partition"] for p in listed if p["table"] == table}
        assert {f"{table}_p{month_of(now)}", f"{table}_p{month_of(nxt)}", f"{table}_default"} <= (
            names
        )
    this_month = next(p for p in listed if p["partition"] == f"rec_outcomes_p{month_of(now)}")
    assert this_month["from"].startswith(now.strftime("%Y-%m-01 00:00:00"))


def test_end_users_reach_partitions_only_through_their_parent(db):
    partitions = [p["partition"] for p in partitions_list()]
    assert len(partitions) >= 12

    for name in partitions:
        for privilege in ("select", "insert", "update", "delete"):
            assert not scalar(
                "select has_table_privilege('recsys_authenticated', %s, %s)", [name, privilege]
            ), (name, privilege)
        assert scalar("select relrowsecurity from pg_class where relname = %s", [name]), name
    # The parents keep their grants and policies.
    for table in TABLES:
        assert scalar("select has_table_privilege('recsys_authenticated', %s, 'insert')", [table])
        assert scalar("select relrowsecurity from pg_class where relname = %s", [table])
    assert not scalar(
        "select has_table_privilege('recsys_authenticated', 'rec_event_keys', 'select')"
    )


# --- Pruning ------------------------------------------------------------------------------


@pytest.mark.parametrize("table", list(TABLES))
def test_a_day_filter_reads_only_that_days_partition(db, table):
    column = TABLES[table]
    day = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)

    plan = "\n".join(
        row[0]
        for row in rows(
            f"explain select * from {table} where {column} >= %s and {column} < %s",
            [day, day + timedelta(days=1)],
        )
    )

    scanned = {name for name in partitions_names(table) if f" {name} " in plan + " "}
    assert scanned == {f"{table}_p{month_of(day)}"}, plan


def partitions_names(table):
    return [p["partition"] for p in partitions_list() if p["table"] == table]


def test_the_results_window_on_impressions_prunes_the_other_months(db):
    partitions_ensure(months_ahead=0, today=date(2026, 1, 15))  # an old month, now present
    start = datetime(2026, 1, 5, tzinfo=UTC)

    plan = "\n".join(
        row[0]
        for row in rows(
            "explain select i.user_id, count(*) from rec_impressions as i "
            "where i.created_at >= %s and i.created_at < %s group by 1",
            [start, start + timedelta(days=7)],
        )
    )

    assert "rec_impressions_p202601" in plan, plan
    assert "rec_impressions_default" not in plan, plan
    assert f"rec_impressions_p{month_of(timezone.now())}" not in plan, plan


# --- Idempotency across partitions --------------------------------------------------------


def test_a_repeated_conversion_is_a_duplicate_whichever_month_it_claims(db):
    user = UserFactory()
    now = timezone.now()
    last_year = now - timedelta(days=400)  # no partition: the default one holds it

    first = conversions_record(user=user, conversions=[purchase("c-1", last_year)])
    again = conversions_record(
        user=user, conversions=[purchase("c-1", now), purchase("c-2", now, value=2)]
    )

    assert [r["status"] for r in first["results"]] == ["accepted"]
    assert [r["status"] for r in again["results"]] == ["duplicate", "accepted"]
    assert rows(
        "select event_id, value, tableoid::regclass::text from rec_conversions "
        "where user_id = %s order by event_id",
        [user.pk],
    ) == [
        ("c-1", 9.5, "rec_conversions_default"),
        ("c-2", 2.0, f"rec_conversions_p{month_of(now)}"),
    ]


def test_ensure_moves_a_months_rows_out_of_the_default_partition_keeping_them_unique(db):
    user = UserFactory()
    when = datetime(2025, 6, 10, 8, tzinfo=UTC)
    conversions_record(user=user, conversions=[purchase("c-1", when), purchase("c-2", when)])
    assert partition_of("rec_conversions", "event_id = 'c-1'") == "rec_conversions_default"

    created = partitions_ensure(months_ahead=0, today=date(2025, 6, 1))

    assert {p["partition"] for p in created if p["created"]} >= {"rec_conversions_p202506"}
    assert partition_of("rec_conversions", "event_id = 'c-1'") == "rec_conversions_p202506"
    assert scalar("select count(*) from rec_conversions where user_id = %s", [user.pk]) == 2
    again = conversions_record(user=user, conversions=[purchase("c-1", when)])
    assert again["duplicate"] == 1
    assert scalar("select count(*) from rec_conversions where user_id = %s", [user.pk]) == 2
    # Idempotent: a second run creates nothing.
    assert not any(p["created"] for p in partitions_ensure(months_ahead=0, today=date(2025, 6, 1)))


def test_an_outcome_moved_to_another_month_keeps_its_event_id_taken(db):
    user, item = UserFactory(), MediaItemFactory()
    request = impression(user, item, timezone.now())
    assert record_outcomes(user, [like("o-1", request, item)])["accepted"] == 1
    # Its row moves to the default partition (an UPDATE across partitions).
    rows("update rec_outcomes set created_at = '2020-01-01Z' where event_id = 'o-1'")
    assert partition_of("rec_outcomes", "event_id = 'o-1'") == "rec_outcomes_default"

    again = record_outcomes(user, [like("o-1", request, item), like("o-2", request, item)])

    assert [r["status"] for r in again["results"]] == ["duplicate", "accepted"]
    assert scalar("select count(*) from rec_outcomes where user_id = %s", [user.pk]) == 2


def test_event_ids_stay_unique_per_user_only(db):
    alice, bob, item = UserFactory(), UserFactory(), MediaItemFactory()
    request_a = impression(alice, item, timezone.now())
    request_b = impression(bob, item, timezone.now())

    assert record_outcomes(alice, [like("same", request_a, item)])["accepted"] == 1
    assert record_outcomes(bob, [like("same", request_b, item)])["accepted"] == 1


def test_renaming_onto_a_taken_event_id_fails_like_the_unique_constraint_did(db):
    user, item = UserFactory(), MediaItemFactory()
    request = impression(user, item, timezone.now())
    record_outcomes(user, [like("a", request, item), like("b", request, item)])

    with pytest.raises(IntegrityError, match="rec_outcomes_user_event_uniq"), transaction.atomic():
        rows("update rec_outcomes set event_id = 'b' where event_id = 'a'")
    rows("update rec_outcomes set event_id = 'c' where event_id = 'a'")
    # The old id is free again, the new one taken.
    result = record_outcomes(user, [like("a", request, item), like("c", request, item)])
    assert [r["status"] for r in result["results"]] == ["accepted", "duplicate"]


def test_a_raw_insert_of_a_stored_event_id_is_skipped(db):
    user, item = UserFactory(), MediaItemFactory()
    request = impression(user, item, timezone.now())
    record_outcomes(user, [like("a", request, item)])

    inserted = rows(
        "insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id, "
        "outcome_type) values ('a', %s, %s, %s, 'dislike'), ('a', %s, %s, %s, 'like') "
        "returning id",
        [user.pk, request, item.pk] * 2,
    )

    assert inserted == []
    assert rows("select outcome_type from rec_outcomes where user_id = %s", [user.pk]) == [
        ("like",)
    ]


# --- The conversion, both ways ------------------------------------------------------------


def snapshot():
    return {table: rows(f"select to_jsonb(t) from {table} as t order by id") for table in TABLES}


def test_the_conversion_keeps_every_row_both_ways(db):
    user, item = UserFactory(), MediaItemFactory()
    now = timezone.now()
    for days_ago in (0, 40, 400, 2000):
        at = now - timedelta(days=days_ago)
        request = impression(user, item, at)
        record_outcomes(user, [like(f"o-{days_ago}", request, item)])
        conversions_record(user=user, conversions=[purchase(f"c-{days_ago}", at)])
    before = snapshot()
    assert [len(v) for v in before.values()] == [4, 4, 4, 0]
    next_id = scalar("select max(id) from rec_impressions") + 1

    with connection.cursor() as cursor:
        # As in a migration of its own: no deferred foreign-key check pending.
        cursor.execute("set constraints all immediate")
        cursor.execute((SQL_DIR / "partitions.v1.down.sql").read_text())
    assert scalar("select relkind from pg_class where relname = 'rec_outcomes'") == "r"
    assert (
        scalar("select count(*) from pg_constraint where conname = 'rec_outcomes_user_event_uniq'")
        == 1
    )
    assert snapshot() == before
    assert scalar("select count(*) from rec_health_daily_metrics_v1") > 0  # the views are back

    with connection.cursor() as cursor:
        cursor.execute((SQL_DIR / "partitions.v1.sql").read_text())
    assert scalar("select relkind from pg_class where relname = 'rec_outcomes'") == "p"
    assert snapshot() == before
    old = month_of(now - timedelta(days=400))
    assert partition_of("rec_conversions", "event_id = 'c-400'") == f"rec_conversions_p{old}"
    assert partition_of("rec_conversions", "event_id = 'c-2000'") == "rec_conversions_default"
    # Identity continues after the copied ids; stored event ids are still taken.
    assert impression(user, item, now) and scalar("select max(id) from rec_impressions") == next_id
    again = conversions_record(user=user, conversions=[purchase("c-2000", now)])
    assert again["duplicate"] == 1
    assert scalar(
        "select reloptions from pg_class where relname = 'rec_health_daily_metrics_v1'"
    ) == ["security_invoker=true"]


# --- manage.py partitions -----------------------------------------------------------------


def test_ensure_creates_the_months_ahead_once(db):
    first = command_output("partitions", "ensure", "--months-ahead", "4")
    second = command_output("partitions", "ensure", "--months-ahead", "4")

    in_four = timezone.now().date().replace(day=1)
    for _ in range(4):
        in_four = (in_four + timedelta(days=32)).replace(day=1)
    assert f"created rec_outcomes_p{in_four:%Y%m}" in first
    assert second.strip().endswith("0 partition(s) created, 20 already there")
    assert f"rec_exposures_p{in_four:%Y%m}" in command_output("partitions", "list")


def test_detach_archives_old_months_and_forgets_their_event_ids(db, tmp_path):
    user = UserFactory()
    partitions_ensure(months_ahead=1, today=date(2025, 1, 1))  # January and February 2025
    conversions_record(
        user=user,
        conversions=[
            purchase("jan", datetime(2025, 1, 20, tzinfo=UTC), value=1.25),
            purchase("feb", datetime(2025, 2, 3, tzinfo=UTC)),
        ],
    )

    output = command_output(
        "partitions", "detach", "--older-than", "2025-02", "--archive-dir", str(tmp_path)
    )

    assert "detached rec_conversions_p202501 (1 rows): archived to" in output
    names = {p["partition"] for p in partitions_list()}
    assert "rec_conversions_p202501" not in names and "rec_conversions_p202502" in names
    assert scalar("select to_regclass('rec_conversions_p202501')") is None
    with open(tmp_path / "rec_conversions_p202501.csv", newline="") as archive:
        archived = list(csv.DictReader(archive))
    assert [(r["event_id"], r["value"], r["metric_name"]) for r in archived] == [
        ("jan", "1.25", "purchase")
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{table}_p202501.csv" for table in TABLES
    )
    assert rows("select event_id from rec_conversions where user_id = %s", [user.pk]) == [("feb",)]
    # The archived event's id is free again; February's is still taken.
    again = conversions_record(
        user=user,
        conversions=[
            purchase("jan", datetime(2025, 1, 20, tzinfo=UTC)),
            purchase("feb", datetime(2025, 2, 3, tzinfo=UTC)),
        ],
    )
    assert [r["status"] for r in again["results"]] == ["accepted", "duplicate"]


def test_detach_without_an_archive_keeps_the_table(db):
    partitions_ensure(months_ahead=0, today=date(2025, 3, 1))

    output = command_output("partitions", "detach", "--older-than", "2025-04")

    assert "detached rec_impressions_p202503 (0 rows): kept as a table" in output
    assert scalar("select relkind from pg_class where relname = 'rec_impressions_p202503'") == "r"
    with pytest.raises(IllegalTransition, match="rec_conversions_p202503 exists but is not a"):
        partitions_ensure(months_ahead=0, today=date(2025, 3, 1))


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["ensure", "--months-ahead", "-1"], "months_ahead: must be a whole number from 0 to 36"),
        (["ensure", "--months-ahead", "37"], "months_ahead: must be a whole number from 0 to 36"),
        (["detach", "--older-than", "2026-13"], "older_than: must be a month as YYYY-MM"),
        (["detach", "--older-than", "2026-02-30"], "older_than: must be a month as YYYY-MM"),
        (["detach", "--older-than", "1969-12"], "older_than: must be a month as YYYY-MM"),
        (["detach", "--older-than", "2026\x00-01"], "older_than: must be a month as YYYY-MM"),
        (["detach", "--older-than", "9999-01"], "older_than: must not be after the current"),
        (
            ["detach", "--older-than", "2025-01", "--archive-dir", "/no/such/dir"],
            "archive_dir: /no/such/dir is not a directory",
        ),
        (
            ["detach", "--older-than", "2025-01", "--archive-dir", "archive\x00dir"],
            "archive_dir: must be the path of a directory",
        ),
    ],
)
def test_bad_input_is_one_readable_line(db, args, reason):
    before = partitions_list()

    assert reason in command_fails("partitions", *args)
    assert partitions_list() == before


def test_an_archive_is_never_overwritten(db, tmp_path):
    partitions_ensure(months_ahead=0, today=date(2025, 1, 1))
    (tmp_path / "rec_outcomes_p202501.csv").write_text("precious")

    message = command_fails(
        "partitions", "detach", "--older-than", "2025-02", "--archive-dir", str(tmp_path)
    )

    assert "rec_outcomes_p202501.csv exists: not overwritten" in message
    assert (tmp_path / "rec_outcomes_p202501.csv").read_text() == "precious"
    assert "rec_outcomes_p202501" in {p["partition"] for p in partitions_list()}


def test_every_migrate_brings_back_this_and_next_month(db):
    now = timezone.now()
    nxt = (now.replace(day=1) + timedelta(days=32)).replace(day=1)
    rows(f"drop table rec_exposures_p{month_of(nxt)}")
    assert f"rec_exposures_p{month_of(nxt)}" not in {p["partition"] for p in partitions_list()}

    call_command("migrate", verbosity=0)  # nothing to apply: only the post-migrate hook runs

    assert f"rec_exposures_p{month_of(nxt)}" in {p["partition"] for p in partitions_list()}


def test_list_as_json_names_every_partition_with_its_range(db):
    listed = json.loads(command_output("partitions", "list", "--json"))

    assert listed == partitions_list()
    default = next(p for p in listed if p["partition"] == "rec_outcomes_default")
    assert (default["table"], default["from"], default["to"]) == ("rec_outcomes", None, None)


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_repeat_waits_for_the_first_and_is_skipped():
    user, item = UserFactory(), MediaItemFactory()
    params = connection.get_connection_params()
    insert = (
        "insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id, "
        "outcome_type) values ('same', %s, gen_random_uuid(), %s, 'like') returning event_id"
    )
    first = psycopg.connect(**params)
    second = psycopg.connect(**params)
    try:
        assert first.execute(insert, [user.pk, item.pk]).fetchall() == [("same",)]
        result = {}
        waiting = threading.Thread(
            target=lambda: result.update(rows=second.execute(insert, [user.pk, item.pk]).fetchall())
        )
        waiting.start()
        waiting.join(timeout=1)
        assert waiting.is_alive()  # blocked on the first transaction's key
        first.commit()
        waiting.join(timeout=10)
        second.commit()
    finally:
        first.close()
        second.close()

    assert result["rows"] == []
    assert scalar("select count(*) from rec_outcomes where user_id = %s", [user.pk]) == 1
