"""The daily rollups (issue 17 §1) on the real PostgreSQL: rollup-backed answers (the variant
daily view, the results with CUPED, ratio, mean, proportion and conversion metrics, the
alerts) equal the raw computation on the same seeded data, a late event reopens its day,
`manage.py rollup` is idempotent and catches up, and a rolled window's results never
seq-scan rec_impressions."""

import json
import math
import re
import uuid
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone

from recsys_experiments.lib.constants import IMPRESSION, OUTCOME_TYPES
from telemetry.models import ExperimentMetric, Metric
from telemetry.results.analysis import experiment_results
from telemetry.results.metrics import PER_USER_COUNTS, pre_period_counts
from telemetry.rollups import rollup_state, rollup_through, utc_today, window_split
from tests.factories.catalog import MediaItemFactory
from tests.factories.experiments import ActiveExperimentFactory
from tests.factories.users import UserFactory
from tests.helpers import command_fails, command_output
from tests.telemetry.results.test_phases_and_window import assign, phase

KEY = "roll_exp"
TODAY = utc_today()
VIEWS_V1 = (Path(__file__).resolve().parents[2] / "telemetry/sql/views.v1.sql").read_text()


def at(days_back: int, hour: float) -> datetime:
    """`hour` o'clock UTC, `days_back` days before today."""
    day = TODAY - timedelta(days=days_back)
    return datetime.combine(day, time.min, tzinfo=UTC) + timedelta(hours=hour)


def execute(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


def impression(user, request, item, when, tags):
    context = json.dumps({"experiments": tags} if tags is not None else {})
    execute(
        "insert into rec_impressions (user_id, rec_request_id, media_item_id, position, "
        "source, request_context, created_at) values (%s, %s, %s, 1, 'cf', %s::jsonb, %s)",
        [user.pk, request, item.pk, context, when],
    )


def outcome(user, request, item, kind, when, value=None):
    execute(
        "insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id, "
        "outcome_type, value, occurred_at, created_at) values (%s, %s, %s, %s, %s, %s, %s, %s)",
        [uuid.uuid4().hex, user.pk, request, item.pk, kind, value, when, when],
    )


def conversion(user, name, value, when, tags):
    execute(
        "insert into rec_conversions (user_id, event_id, metric_name, value, metadata, "
        "occurred_at, request_context) values (%s, %s, %s, %s, '{}', %s, %s::jsonb)",
        [user.pk, uuid.uuid4().hex, name, value, when, json.dumps({"experiments": tags})],
    )


@pytest.fixture
def seeded(db, settings):
    """An experiment that started 6 days ago at 09:00 UTC; 30 users (alternately control and
    treatment, one forced), each with a few decks a day from 9 days ago to today (untagged
    before the start: the CUPED pre-period), likes, dislikes, ratings and detail opens with
    seeded chances, purchases tagged with their variant, one app-side exposure only user and
    an item served twice in one request."""
    settings.RESULTS_CUPED_DAYS = 7
    rng = np.random.default_rng(17)
    items = MediaItemFactory.create_batch(12)
    users = [UserFactory() for _ in range(30)]
    experiment = ActiveExperimentFactory(key=KEY, started_at=at(6, 9))
    phase(experiment, 1, at(6, 9))
    metrics = [
        Metric.objects.get(key=key)
        for key in ("like_rate", "likes_per_user", "mean_rating", "users_with_like")
    ]
    metrics.append(
        Metric.objects.create(
            key="purchase_sum",
            name="Purchases",
            kind="mean",
            numerator="conversion",
            numerator_name="purchase",
            value="sum",
        )
    )
    metrics.append(
        Metric.objects.create(
            key="purchases_per_impression",
            name="Purchases per impression",
            kind="ratio",
            numerator="conversion",
            numerator_name="purchase",
            denominator="impression",
        )
    )
    for n, metric in enumerate(metrics):
        ExperimentMetric.objects.create(experiment=experiment, metric=metric, is_primary=n == 0)
    for n, user in enumerate(users):
        variant = ("control", "treatment")[n % 2]
        assign(experiment, user, variant, at=at(6, 9), mode="manual" if n == 5 else "auto")
        for back in range(9, -1, -1):
            for hour in (3.5, 11, 20):
                if rng.random() < 0.4 or (back == 0 and hour == 20):
                    continue
                when = at(back, hour)
                tags = {KEY: variant, "other": "x"} if when >= at(6, 9) else None
                request = uuid.uuid4()
                shown = rng.choice(len(items), 3, replace=False)
                for k in shown:
                    impression(user, request, items[k], when, tags)
                if n == 7 and back == 3:  # an item served twice in one request
                    impression(user, request, items[shown[0]], when, tags)
                for k in shown:
                    late = when + timedelta(minutes=5)
                    if rng.random() < (0.3 if variant == "control" else 0.4):
                        outcome(user, request, items[k], "like", late)
                    if rng.random() < 0.1:
                        outcome(user, request, items[k], "dislike", late)
                    if rng.random() < 0.2:
                        outcome(user, request, items[k], "rating", late, rng.integers(1, 11) / 2)
                    if rng.random() < 0.15:
                        outcome(user, request, items[k], "detail_open", late)
                if tags and rng.random() < 0.3:
                    conversion(user, "purchase", round(float(rng.uniform(1, 50)), 2), when, tags)
                if tags is None and rng.random() < 0.2:
                    conversion(user, "purchase", 7.5, when, {})
    app_only = UserFactory()
    assign(experiment, app_only, "treatment", at=at(4, 10))
    execute(
        "insert into rec_exposures (event_id, user_id, experiment_id, variant, "
        "request_context, occurred_at) values ('e1', %s, %s, 'treatment', '{}', %s)",
        [app_only.pk, experiment.pk, at(4, 10)],
    )
    return experiment, users, items


def raw(settings, function, *args, **kwargs):
    settings.TELEMETRY_ROLLUPS = False
    try:
        return function(*args, **kwargs)
    finally:
        settings.TELEMETRY_ROLLUPS = True


def assert_same(left, right, path="$"):
    if isinstance(left, float) or isinstance(right, float):
        if left is None or right is None or (math.isnan(left) and math.isnan(right)):
            assert left is right or (math.isnan(left) and math.isnan(right)), path
            return
        assert left == pytest.approx(right, rel=1e-9, abs=1e-12), path
    elif isinstance(left, dict):
        assert left.keys() == right.keys(), path
        for key in left:
            assert_same(left[key], right[key], f"{path}.{key}")
    elif isinstance(left, list):
        assert len(left) == len(right), path
        for n, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_same(a, b, f"{path}[{n}]")
    else:
        assert left == right, path


NOW = timezone.now()


def results(experiment, **kwargs):
    return experiment_results(experiment, sequential=False, now=NOW, **kwargs)


def test_results_from_rollups_equal_the_raw_computation_and_a_late_outcome_reopens_its_day(
    seeded, settings
):
    experiment, users, _items = seeded
    expected = raw(settings, results, experiment)
    assert rollup_state() == (None, set())

    # The read rolls the window's complete days on demand and reads them from the rollups.
    rolled = results(experiment)
    watermark, dirty = rollup_state()
    assert watermark == TODAY - timedelta(days=1) and not dirty
    assert_same(rolled, expected)
    split = window_split(at(6, 9), timezone.now())
    assert split.days == [TODAY - timedelta(days=d) for d in range(5, 0, -1)]
    by_metric = {row["metric"]: row for row in rolled["metrics"]}
    assert by_metric["like_rate"]["cuped"] and by_metric["like_rate"]["variance_reduction"] > 0
    assert by_metric["purchase_sum"]["value"] > 0
    assert rolled["excluded"]["manual"] == 1

    # A like arriving today for an impression served 3 days ago reopens that day.
    [(request, item_id)] = execute(
        "select rec_request_id, media_item_id from rec_impressions "
        "where user_id = %s and created_at = %s limit 1",
        [users[1].pk, at(3, 11)],
    ) or execute(
        "select rec_request_id, media_item_id from rec_impressions "
        "where user_id = %s and created_at >= %s and created_at < %s limit 1",
        [users[1].pk, at(3, 0), at(2, 0)],
    )
    execute(
        "insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id, "
        "outcome_type, occurred_at) values ('late', %s, %s, %s, 'watchlist', now())",
        [users[1].pk, request, item_id],
    )
    assert rollup_state()[1] == {TODAY - timedelta(days=3)}
    settings.TELEMETRY_ROLLUPS = True
    # Read raw for that day without a refresh, then rolled again: the same answer each way.
    after = raw(settings, results, experiment)
    assert after != expected
    assert_same(results(experiment), after)
    assert rollup_state() == (TODAY - timedelta(days=1), set())


def view_rows(sql):
    rows = execute(f"select * from ({sql}) as v order by day, experiment_key, variant")
    return [tuple(row) for row in rows]


def v1_select(name):
    """views.v1.sql's definition of a view: the raw computation."""
    match = re.search(
        rf"create view {name} with \(security_invoker = true\) as\n(.*?);", VIEWS_V1, re.S
    )
    return match.group(1)


def test_the_variant_daily_view_is_exact_before_during_and_after_rollups(seeded):
    raw_view = v1_select("rec_variant_daily_metrics_v1")
    before = view_rows(raw_view)
    assert view_rows("select * from rec_variant_daily_metrics_v1") == before

    rolled = rollup_through(through=TODAY - timedelta(days=1))
    assert rolled == [TODAY - timedelta(days=d) for d in range(9, 0, -1)]
    assert view_rows("select * from rec_variant_daily_metrics_v1") == before
    # The repeated item counts its outcomes per impression, as in v1.
    assert execute("select count(*) from rec_daily_user_rollups") != [(0,)]

    # A late rating for 2 days ago: the day is read raw until it is rolled again.
    [(request, item_id)] = execute(
        "select rec_request_id, media_item_id from rec_impressions "
        "where created_at >= %s and created_at < %s and request_context <> '{}' limit 1",
        [at(2, 0), at(1, 0)],
    )
    execute(
        "insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id, "
        "outcome_type, value, occurred_at) select 'late-r', user_id, rec_request_id, "
        "media_item_id, 'rating', 5, now() from rec_impressions "
        "where rec_request_id = %s and media_item_id = %s limit 1",
        [request, item_id],
    )
    changed = view_rows(raw_view)
    assert changed != before
    assert view_rows("select * from rec_variant_daily_metrics_v1") == changed
    assert rollup_through(through=TODAY - timedelta(days=1)) == [TODAY - timedelta(days=2)]
    assert view_rows("select * from rec_variant_daily_metrics_v1") == changed
    # A day filter sees the same rows.
    day = TODAY - timedelta(days=2)
    assert view_rows(
        f"select * from rec_variant_daily_metrics_v1 where day = '{day.isoformat()}'"
    ) == [row for row in changed if row[0] == day]


def test_active_alerts_equal_the_v1_computation(seeded):
    execute("update rec_alert_thresholds set threshold = 0 where alert = 'like_rate_drop'")
    expected = execute(
        "select day, alert, value, threshold from rec_alerts_daily_metrics_v1 "
        "where fires and day >= current_date - 1 order by 1, 2"
    )
    assert expected
    assert execute("select * from rec_active_alerts_v1 order by 1, 2") == expected


def test_rollup_command_is_idempotent_and_catches_up_missed_days(seeded):
    three_ago = (TODAY - timedelta(days=3)).isoformat()
    assert command_output("rollup", "--through", three_ago).startswith("rolled 7 day(s): ")
    assert command_output("rollup", "--through", three_ago) == "nothing to roll: up to date\n"
    # The cron missed two nights: the next run catches up both.
    out = json.loads(command_output("rollup", "--json"))
    assert out == {"rolled": [(TODAY - timedelta(days=d)).isoformat() for d in (2, 1)]}
    assert command_output("rollup") == "nothing to roll: up to date\n"
    before = execute("select * from rec_daily_user_rollups order by 1, 2, 3, 4")
    assert json.loads(command_output("rollup", "--rebuild-day", three_ago, "--json")) == {
        "rolled": [three_ago]
    }
    assert execute("select * from rec_daily_user_rollups order by 1, 2, 3, 4") == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--through", "2024-02-30"), "--through: must be a real date as YYYY-MM-DD"),
        (("--through", "2024-01-0\x00"), "--through: must be a real date as YYYY-MM-DD"),
        (("--rebuild-day", "yesterday"), "--rebuild-day: must be a date as YYYY-MM-DD"),
        (("--rebuild-day", TODAY.isoformat()), "is not a complete UTC day yet"),
        (("--through", (TODAY + timedelta(days=400)).isoformat()), "is not a complete UTC day"),
        (("--through", "2024-01-01", "--rebuild-day", "2024-01-01"), "not both"),
    ],
)
def test_rollup_command_refuses_bad_input_in_one_line(db, args, message):
    assert message in command_fails("rollup", *args)


def test_results_over_a_rolled_window_do_not_seq_scan_impressions(seeded):
    _experiment, users, items = seeded
    # Enough history that a scan would cost: 40k more impressions over the rolled days.
    execute(
        "insert into rec_impressions (user_id, rec_request_id, media_item_id, position, "
        "source, request_context, created_at) "
        "select u.id, gen_random_uuid(), %s, 1, 'cf', "
        "jsonb_build_object('experiments', jsonb_build_object(%s, 'control')), "
        "%s + (g %% 5) * interval '1 day' + (g %% 7) * interval '1 hour' "
        "from generate_series(1, 40000) as g, lateral (select id from accounts_user "
        "where id = %s) as u",
        [items[0].pk, KEY, at(5, 1), users[0].pk],
    )
    rollup_through(through=TODAY - timedelta(days=1))
    execute("analyze rec_impressions")
    execute("analyze rec_daily_user_rollups")
    split = window_split(at(5, 0), at(0, 0))
    assert split.raw_from == [] and len(split.days) == 5
    with connection.cursor() as cursor:
        sql = cursor.mogrify(PER_USER_COUNTS, {"key": KEY, **split.params()})
    plan = "\n".join(row[0] for row in execute("explain " + sql))
    assert "rec_daily_user_rollups" in plan
    # Only relations without a row may be planned as sequential scans (the empty default and
    # future partitions, under a raw part that is empty here): never the history.
    scanned = set(re.findall(r"Seq Scan on (rec_impressions\w*)", plan))
    assert [
        name for name in scanned if execute(f'select exists (select from "{name}")')[0][0]
    ] == []


VIEWS_V2 = (Path(__file__).resolve().parents[2] / "telemetry/sql/views.v2.sql").read_text()


def raw_health_sql() -> str:
    """views.v1.sql's health view: every day from the raw rows."""
    return v1_select("rec_health_daily_metrics_v1")


def raw_alerts_sql() -> str:
    """views.v2.sql's active alerts over the raw health view (before the health rollup)."""
    text = VIEWS_V2[VIEWS_V2.index("create or replace view rec_active_alerts_v1") :]
    body = text.split(" as\n", 1)[1].rstrip().rstrip(";")
    return body.replace("rec_health_daily_metrics_v1 as h", f"({raw_health_sql()}) as h")


def assert_health_exact():
    raw = execute(f"select * from ({raw_health_sql()}) as v order by day")
    assert execute("select * from rec_health_daily_metrics_v1 order by day") == raw
    day = TODAY - timedelta(days=2)
    assert execute(
        "select * from rec_health_daily_metrics_v1 where day between %s and %s order by day",
        [day, TODAY],
    ) == [row for row in raw if day <= row[0] <= TODAY]
    assert execute("select * from rec_active_alerts_v1 order by 1, 2") == execute(
        f"select * from ({raw_alerts_sql()}) as v order by 1, 2"
    )
    return raw


def test_health_view_and_alerts_from_the_health_rollup_equal_the_raw_computation(seeded):
    _experiment, users, items = seeded
    # Every alert can fire, so that the comparison covers their values.
    execute("update rec_alert_thresholds set threshold = 0 where alert = 'like_rate_drop'")
    execute("update rec_alert_thresholds set threshold = -1 where fires_when = 'above'")
    before = assert_health_exact()
    assert execute(f"select count(*) from ({raw_alerts_sql()}) as v") != [(0,)]
    rollup_through(through=TODAY - timedelta(days=1))
    assert execute("select count(*) from rec_daily_health_rollups") == [(9,)]
    assert assert_health_exact() == before

    # An orphan outcome arriving (created) 2 days ago reopens its own day.
    orphan_request = uuid.uuid4()
    outcome(users[3], orphan_request, items[0], "like", at(2, 13))
    assert TODAY - timedelta(days=2) in rollup_state()[1]
    assert assert_health_exact() != before
    rollup_through(through=TODAY - timedelta(days=1))
    assert_health_exact()

    # A late impression adopts it: the outcome's day (not only the impression's) reopens.
    impression(users[3], orphan_request, items[0], at(4, 8), {KEY: "treatment"})
    assert {TODAY - timedelta(days=d) for d in (2, 4)} <= rollup_state()[1]
    assert_health_exact()
    rollup_through(through=TODAY - timedelta(days=1))
    assert_health_exact()

    # An outcome created before the first rolled day, and an untagged impression of 3 days ago.
    outcome(users[4], uuid.uuid4(), items[1], "dislike", at(20, 1))
    impression(users[4], uuid.uuid4(), items[1], at(3, 2), None)
    assert_health_exact()
    rollup_through(through=TODAY - timedelta(days=1))
    assert_health_exact()

    # A deleted user's events go with them: every day they had reopens.
    users[6].delete()
    assert_health_exact()
    rollup_through(through=TODAY - timedelta(days=1))
    assert not rollup_state()[1]
    assert_health_exact()


def relation_rows(plan: dict, names: set[str]) -> int:
    """Rows the plan's nodes read from these tables (actual rows x loops)."""
    own = plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1)
    found = own if plan.get("Relation Name") in names else 0
    return found + sum(relation_rows(child, names) for child in plan.get("Plans", []))


def test_health_over_rolled_days_reads_no_raw_rows(seeded):
    _experiment, users, items = seeded
    # Enough rolled history that reading it would show: 40k impressions, 10k likes on them.
    execute(
        "insert into rec_impressions (user_id, rec_request_id, media_item_id, position, "
        "source, request_context, created_at) "
        "select %s, gen_random_uuid(), %s, 1, 'cf', '{}', "
        "%s + (g %% 8) * interval '1 day' + (g %% 7) * interval '1 hour' "
        "from generate_series(1, 40000) as g",
        [users[0].pk, items[0].pk, at(8, 1)],
    )
    execute(
        "insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id, "
        "outcome_type, occurred_at, created_at) "
        "select 'bulk-' || i.id, i.user_id, i.rec_request_id, i.media_item_id, 'like', "
        "i.created_at, i.created_at from rec_impressions as i "
        "where i.request_context = '{}' and i.created_at < %s and i.id %% 4 = 0",
        [at(0, 0)],
    )
    rollup_through(through=TODAY - timedelta(days=1))
    execute("analyze rec_impressions")
    execute("analyze rec_outcomes")
    [[[plan]]] = execute(
        "explain (analyze, format json) select * from rec_health_daily_metrics_v1 "
        "where day between %s and %s",
        [TODAY - timedelta(days=7), TODAY - timedelta(days=1)],
    )
    assert relation_rows(plan["Plan"], {"rec_daily_health_rollups"}) == 7
    assert relation_rows(plan["Plan"], {"rec_impressions", "rec_outcomes"}) == 0
    # The alerts read today raw (its impressions for the counts and the like rate, its
    # outcomes for the counts, the orphan probes and the like rate) and the first impression:
    # a few hundred rows here, none of the 50k on the rolled days.
    [(today_impressions, today_outcomes)] = execute(
        "select (select count(*) from rec_impressions where created_at >= %s), "
        "(select count(*) from rec_outcomes where created_at >= %s)",
        [at(0, 0), at(0, 0)],
    )
    assert today_impressions > 0
    [[[plan]]] = execute("explain (analyze, format json) select * from rec_active_alerts_v1")
    read = relation_rows(plan["Plan"], {"rec_impressions", "rec_outcomes"})
    assert read <= 3 * (today_impressions + today_outcomes)


def test_the_variant_view_calls_the_watermark_once_not_per_raw_row(seeded):
    rollup_through(through=TODAY - timedelta(days=3))
    # Dirty one rolled day, so both raw branches (after the watermark, dirty) have rows.
    execute("update rec_rollup_days set dirty = true where day = %s", [TODAY - timedelta(days=5)])
    [[[plan]]] = execute(
        "explain (analyze, verbose, format json) select * from rec_variant_daily_metrics_v1 "
        "where day >= %s",
        [TODAY - timedelta(days=6)],
    )

    def nodes(node: dict):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    # v2 evaluated `day > coalesce(rec_rollup_watermark(), …)` as a filter on every raw row.
    assert [n["Filter"] for n in nodes(plan["Plan"]) if "watermark" in n.get("Filter", "")] == []
    raw_scans = [
        n for n in nodes(plan["Plan"]) if n.get("Relation Name", "").startswith("rec_impressions")
    ]
    assert sum(n["Actual Rows"] * n["Actual Loops"] for n in raw_scans) > 0
    raw_view = v1_select("rec_variant_daily_metrics_v1")
    assert view_rows("select * from rec_variant_daily_metrics_v1") == view_rows(raw_view)


def test_the_cuped_pre_period_reads_the_window_users_not_the_whole_phase(seeded):
    _experiment, users, items = seeded
    # 2,000 other users exposed in the phase before the window, one rolled day each: reading
    # every phase user's first exposure (as before) reads all of them.
    execute(
        "insert into accounts_user (id, password, is_superuser, username, first_name, "
        "last_name, email, is_staff, is_active, date_joined, is_anonymous_install) "
        "select md5('phase-only-' || g)::uuid, '!', false, 'phase-only-' || g, '', '', '', "
        "false, true, now(), false from generate_series(1, 2000) as g"
    )
    execute(
        "insert into rec_impressions (user_id, rec_request_id, media_item_id, position, "
        "source, request_context, created_at) "
        "select md5('phase-only-' || g)::uuid, gen_random_uuid(), %s, 1, 'cf', "
        "jsonb_build_object('experiments', jsonb_build_object(%s, 'control')), "
        "%s + (g %% 3) * interval '1 day' from generate_series(1, 2000) as g",
        [items[0].pk, KEY, at(6, 12)],
    )
    rollup_through(through=TODAY - timedelta(days=1))
    execute("analyze rec_daily_user_rollups")
    window = (at(2, 0), at(0, 0) + timedelta(hours=23))
    everyone = pre_period_counts(KEY, window=window, phase_start=at(6, 9), days=7)
    window_users = {str(u.pk) for u in users[:6]}
    # The same counts for the users asked, whether or not the query is narrowed to them.
    narrowed = pre_period_counts(
        KEY, window=window, phase_start=at(6, 9), days=7, users=window_users
    )
    assert set(narrowed.user_ids) <= window_users and narrowed.user_ids
    same = everyone.aligned(narrowed.user_ids)
    for kind in (IMPRESSION, *OUTCOME_TYPES):
        assert list(same.count(kind)) == list(narrowed.count(kind))
    seen = []

    def explain(execute_sql, sql, params, many, context):
        if "first_exposure" in sql and not sql.startswith("explain"):
            seen.append(execute(f"explain (analyze, format json) {sql}", params)[0][0][0])
        return execute_sql(sql, params, many, context)

    with connection.execute_wrapper(explain):
        pre_period_counts(KEY, window=window, phase_start=at(6, 9), days=7, users=window_users)
    [plan] = seen
    # A few rolled rows per wanted user (first exposure, whole pre-period days), none of the
    # 2,000 phase-only users' rows.
    assert relation_rows(plan["Plan"], {"rec_daily_user_rollups"}) <= 10 * len(window_users)


def test_a_catch_up_leaves_the_planner_statistics_of_the_days_it_rolled(seeded):
    def planned_rows():
        return execute(
            "select relname, reltuples::bigint from pg_class where relname in "
            "('rec_daily_user_rollups', 'rec_daily_user_totals') order by relname"
        )

    rolled = rollup_through(through=TODAY - timedelta(days=1))
    assert len(rolled) == 9
    # What a read right after the catch-up is planned on: the rows just rolled, not the
    # statistics from before them (autovacuum comes later, if at all before the read).
    assert planned_rows() == execute(
        "select 'rec_daily_user_rollups', count(*) from rec_daily_user_rollups union all "
        "select 'rec_daily_user_totals', count(*) from rec_daily_user_totals"
    )
    assert planned_rows()[0][1] > 0


def test_a_guardrail_on_an_unlisted_metric_reads_the_users_counts_once(seeded):
    experiment, _users, _items = seeded
    # dislike_rate is not among the experiment's metrics: its rows are computed apart, from
    # the same users' counts (they were read a second time, pre-period included).
    experiment.guardrails = [{"metric": "dislike_rate", "max_rise": 0.5}]
    experiment.save(update_fields=["guardrails"])
    statements = []

    def record(execute_sql, sql, params, many, context):
        statements.append(sql)
        return execute_sql(sql, params, many, context)

    with connection.execute_wrapper(record):
        found = results(experiment)
    [guardrail] = found["guardrails"]
    assert guardrail["metric"] == "dislike_rate" and guardrail["status"] != "not enough data"
    assert "dislike_rate" not in {row["metric"] for row in found["metrics"]}
    assert sum(sql == PER_USER_COUNTS for sql in statements) == 1
    assert sum("first_exposure as (" in sql for sql in statements) == 2  # counts, conversions
