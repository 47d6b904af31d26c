"""Each daily view's numbers against a small hand-built dataset, the no-refresh path, and
proof that a day filter reads only those days."""

import uuid

import pytest
from django.db import connection

from tests.factories.catalog import MediaItemFactory
from tests.factories.users import UserFactory
from tests.helpers import history_seq_scans

# Noon UTC of a day relative to today, computed by the database.
DAY = "(date_trunc('day', now() at time zone 'UTC') + interval '12 hours') at time zone 'UTC'"


def rows(query, params=()):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        columns = [c.name for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def impression(user, request, item, position, source, experiments, days_ago=0):
    context = "{}" if experiments is None else f'{{"experiments": {experiments}}}'
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into rec_impressions (user_id, rec_request_id, media_item_id, position, "
            f"source, request_context, created_at) values (%s, %s, %s, %s, %s, %s::jsonb, "
            f"{DAY} - make_interval(days => %s))",
            [user.pk, request, item.pk, position, source, context, days_ago],
        )


def outcome(user, request, item, kind, value=None, days_ago=0):
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id, "
            f"outcome_type, value, occurred_at, created_at) values (%s, %s, %s, %s, %s, %s, "
            f"{DAY} - make_interval(days => %s), {DAY} - make_interval(days => %s))",
            [uuid.uuid4().hex, user.pk, request, item.pk, kind, value, days_ago, days_ago],
        )


@pytest.fixture
def dataset(db):
    """Today: u1 sees m1 (cf) and m2 (popularity) tagged exp_a=control; u2 sees m1 (genre)
    tagged exp_a=treatment, exp_b=x. Yesterday: one untagged impression. Three days ago: one
    impression; two days ago: none."""
    m1 = MediaItemFactory(genres=["drama", "comedy"])
    m2 = MediaItemFactory(genres=["horror"])
    u1, u2 = UserFactory(), UserFactory()
    r1, r2, r_old, r_older = (uuid.uuid4() for _ in range(4))
    impression(u1, r1, m1, 1, "cf", '{"exp_a": "control"}')
    impression(u1, r1, m2, 2, "popularity", '{"exp_a": "control"}')
    impression(u2, r2, m1, 1, "genre", '{"exp_a": "treatment", "exp_b": "x"}')
    impression(u1, r_old, m2, 1, "freshness", None, days_ago=1)
    impression(u1, r_older, m1, 1, "cf", '{"exp_a": "control"}', days_ago=3)
    outcome(u1, r1, m1, "like")
    outcome(u1, r1, m1, "rating", 4)
    outcome(u1, r1, m2, "dislike")
    outcome(u2, r2, m1, "like")
    outcome(u2, r2, m1, "detail_open")
    outcome(u2, r2, m2, "like")  # m2 was never served in r2: an orphan


def today(view, *order):
    return rows(f"select * from {view} where day = current_date order by {', '.join(order)}")


def pick(row, *fields):
    return tuple(row[field] for field in fields)


def test_variant_view(dataset):
    result = today("rec_variant_daily_metrics_v1", "experiment_key", "variant")
    fields = ("experiment_key", "variant", "impressions", "users", "requests", "likes",
              "dislikes", "ratings", "detail_opens", "avg_rating", "like_rate")  # fmt: skip

    assert [pick(row, *fields) for row in result] == [
        ("exp_a", "control", 2, 1, 1, 1, 1, 1, 0, 4.0, 0.5),
        ("exp_a", "treatment", 1, 1, 1, 1, 0, 0, 1, None, 1.0),
        ("exp_b", "x", 1, 1, 1, 1, 0, 0, 1, None, 1.0),
    ]
    assert not rows("select 1 from rec_variant_daily_metrics_v1 where day = current_date - 1")


def test_source_view(dataset):
    result = today("rec_source_daily_metrics_v1", "source")

    assert [pick(r, "source", "impressions", "likes", "dislikes", "like_rate") for r in result] == [
        ("cf", 1, 1, 0, 1.0),
        ("genre", 1, 1, 0, 1.0),
        ("popularity", 1, 0, 1, 0.0),
    ]


def test_position_view(dataset):
    result = today("rec_position_daily_metrics_v1", "position")

    assert [pick(r, "position", "impressions", "likes", "detail_opens") for r in result] == [
        (1, 2, 2, 1),
        (2, 1, 0, 0),
    ]


def test_genre_view_counts_an_item_in_each_genre(dataset):
    result = today("rec_genre_daily_metrics_v1", "genre")

    assert [pick(r, "genre", "impressions", "likes", "dislikes") for r in result] == [
        ("comedy", 2, 2, 0),
        ("drama", 2, 2, 0),
        ("horror", 1, 0, 1),
    ]


def test_health_view(dataset):
    result = rows(
        "select * from rec_health_daily_metrics_v1 where day >= current_date - 1 order by day"
    )
    fields = ("impressions", "impressions_missing_experiments",
              "impressions_missing_experiments_share", "outcomes",
              "outcomes_without_impression")  # fmt: skip

    assert [pick(r, *fields) for r in result] == [(1, 1, 1.0, 0, 0), (3, 0, 0.0, 6, 1)]
    assert result[1]["outcomes_without_impression_share"] == pytest.approx(1 / 6)


def test_alerts_and_active_alerts(dataset):
    firing = rows(
        "select day - current_date as offset, alert from rec_alerts_daily_metrics_v1 "
        "where fires order by 1, 2"
    )
    active = rows(
        "select day - current_date as offset, alert from rec_active_alerts_v1 order by 1, 2"
    )

    assert {"offset": -2, "alert": "no_impressions"} in firing
    assert {"offset": -1, "alert": "untagged_impressions"} in firing
    assert {"offset": 0, "alert": "orphan_outcomes"} in firing
    assert active == [
        {"offset": -1, "alert": "untagged_impressions"},
        {"offset": 0, "alert": "orphan_outcomes"},
    ]


def test_thresholds_come_from_the_table(dataset):
    with connection.cursor() as cursor:
        cursor.execute(
            "update rec_alert_thresholds set threshold = 0.5 where alert = 'orphan_outcomes'"
        )

    assert {r["alert"] for r in rows("select alert from rec_active_alerts_v1")} == {
        "untagged_impressions"
    }


def test_the_variant_view_has_today_right_after_a_deck_and_an_outcome(app_client, catalog):
    from tests.factories.experiments import ActiveExperimentFactory

    ActiveExperimentFactory(key="live_now")
    deck = app_client.post("/api/v1/deck", {"limit": 4}, format="json").json()
    app_client.post(
        "/api/v1/outcomes",
        {
            "outcomes": [
                {
                    "event_id": "first-like",
                    "rec_request_id": deck["rec_request_id"],
                    "media_item_id": deck["items"][0]["media_item_id"],
                    "outcome_type": "like",
                }
            ]
        },
        format="json",
    )

    [row] = rows(
        "select * from rec_variant_daily_metrics_v1 "
        "where day = current_date and experiment_key = %s",
        ["live_now"],
    )
    assert row["variant"] == deck["experiments"]["live_now"]
    assert (row["impressions"], row["likes"], row["users"]) == (4, 1, 1)


def fill_history(days: int, per_day: int) -> None:
    """A long history straight in SQL, then fresh planner statistics."""
    item = MediaItemFactory()
    user = UserFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            insert into rec_impressions (user_id, rec_request_id, media_item_id, position,
                                         source, request_context, created_at)
            select %s, gen_random_uuid(), %s, 1, 'cf', '{"experiments": {"e": "a"}}',
                   now() - make_interval(days => n %% %s, secs => n %% 86400)
            from generate_series(1, %s) as n
            """,
            [user.pk, item.pk, days, days * per_day],
        )
        cursor.execute(
            """
            insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id,
                                      outcome_type, occurred_at, created_at)
            select 'h' || i.id, i.user_id, i.rec_request_id, i.media_item_id, 'like',
                   i.created_at, i.created_at
            from rec_impressions as i where i.id % 3 = 0
            """
        )
        cursor.execute("analyze rec_impressions")
        cursor.execute("analyze rec_outcomes")


@pytest.mark.parametrize(
    "view",
    [
        "rec_variant_daily_metrics_v1",
        "rec_source_daily_metrics_v1",
        "rec_position_daily_metrics_v1",
        "rec_health_daily_metrics_v1",
    ],
)
def test_a_day_filter_does_not_scan_all_history(db, view):
    fill_history(days=400, per_day=250)  # 100,000 impressions; a week is under 2% of them

    with connection.cursor() as cursor:
        cursor.execute(f"explain select * from {view} where day >= current_date - 7")
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "idx_rec_impressions_day" in plan, plan
    assert history_seq_scans(plan, "rec_impressions") == [], plan
    if view == "rec_health_daily_metrics_v1":
        assert "idx_rec_outcomes_day" in plan, plan
