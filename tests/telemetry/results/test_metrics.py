"""Catalogue metrics on the real PostgreSQL: per-user counts from planted impressions and
outcomes, rows equal to the lib computation on the same numbers, and a planted +5%
per-impression like lift among engaged users found by the ratio metric with the p-value of a
direct delta-method computation. Rows are planted with bulk SQL inserts."""

import json
import math
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from scipy import stats

from recsys_experiments.lib.statistics import (
    ONE_USER,
    adjust_p_values,
    mean_lift,
    proportion_lift,
    ratio_lift,
)
from telemetry.models import ExperimentMetric, Metric
from telemetry.results.metrics import (
    experiment_metrics,
    metric_rows,
    primary_metric,
    variant_counts,
)
from tests.factories.catalog import MediaItemFactory
from tests.factories.experiments import ActiveExperimentFactory, ExperimentFactory
from tests.recsys_experiments.lib.test_metric_statistics import direct_delta, engaged_users

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
WINDOW = (NOW - timedelta(days=7), NOW)
ROW_KEYS = [
    "metric",
    "kind",
    "variant",
    "control_value",
    "value",
    "abs_lift",
    "abs_ci_low",
    "abs_ci_high",
    "rel_lift",
    "rel_ci_low",
    "rel_ci_high",
    "p_value",
    "p_adjusted",
    "sequential",
    "cuped",
    "variance_reduction",
]


def make_users(n):
    User = get_user_model()
    users = [User(username=f"u{uuid.uuid4().hex}") for _ in range(n)]
    User.objects.bulk_create(users)
    return [str(user.pk) for user in users]


def plant(key, item, users, variants, impressions, outcomes=(), at=NOW - timedelta(days=1)):
    """impressions[i] tagged impressions for users[i] in variants[i]; outcomes are
    (user index, impression number from 1, outcome type, value) on those impressions."""
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into rec_impressions (user_id, rec_request_id, media_item_id, position, "
            "source, request_context, created_at) "
            "select t.user_id, md5(t.user_id::text || %(at)s::text || g)::uuid, %(item)s, g, "
            "'test', jsonb_build_object('experiments', jsonb_build_object(%(key)s, t.variant)), "
            "%(at)s "
            "from unnest(%(users)s::uuid[], %(variants)s::text[], %(n)s::int[]) "
            "as t(user_id, variant, n), generate_series(1, t.n) as g",
            {
                "key": key,
                "item": item.pk,
                "users": users,
                "variants": variants,
                "n": list(impressions),
                "at": at,
            },
        )
        if outcomes:
            index, number, kind, value = zip(*outcomes, strict=True)
            cursor.execute(
                "insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id, "
                "outcome_type, value) "
                "select md5(random()::text || t.g), t.user_id, "
                "md5(t.user_id::text || %(at)s::text || t.g)::uuid, %(item)s, t.kind, t.value "
                "from unnest(%(users)s::uuid[], %(g)s::int[], %(kinds)s::text[], "
                "%(values)s::float8[]) as t(user_id, g, kind, value)",
                {
                    "item": item.pk,
                    "users": [users[i] for i in index],
                    "g": list(number),
                    "kinds": list(kind),
                    "values": list(value),
                    "at": at,
                },
            )


def bulk_likes(key, item, users, variant, impressions, likes):
    """Each user: impressions[i] impressions, likes on the first likes[i] of them."""
    plant(key, item, users, [variant] * len(users), impressions.tolist())
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id, "
            "outcome_type) "
            "select 'like-' || g, t.user_id, md5(t.user_id::text || %(at)s::text || g)::uuid, "
            "%(item)s, 'like' "
            "from unnest(%(users)s::uuid[], %(likes)s::int[]) as t(user_id, likes), "
            "generate_series(1, t.likes) as g",
            {
                "item": item.pk,
                "users": users,
                "likes": likes.tolist(),
                "at": NOW - timedelta(days=1),
            },
        )


@pytest.fixture
def planted(db):
    """control c0..c3, treatment t0..t2 with known counts; noise that must not count: an
    untagged impression with a like, another experiment's impression, an impression before the
    window, and (for population tests) x0 seen in both variants."""
    experiment = ActiveExperimentFactory(key="blend")
    item = MediaItemFactory()
    c = make_users(4)
    t = make_users(3)
    users, variants = c + t, ["control"] * 4 + ["treatment"] * 3
    impressions = [5, 3, 4, 2, 6, 4, 5]
    outcomes = [
        (0, 1, "like", None),
        (0, 2, "like", None),
        (0, 3, "rating", 4.0),
        (1, 1, "dislike", None),
        (2, 1, "like", None),
        (2, 1, "rating", 3.0),
        (2, 2, "rating", 5.0),
        (4, 1, "like", None),
        (4, 2, "like", None),
        (4, 3, "like", None),
        (4, 4, "detail_open", None),
        (5, 1, "like", None),
        (5, 2, "rating", 4.5),
        (6, 1, "like", None),
        (6, 2, "watchlist", None),
    ]
    plant("blend", item, users, variants, impressions, outcomes)
    # Noise: another experiment's tag, an impression before the window.
    plant("other", item, [c[0]], ["treatment"], [7], [(0, 1, "like", None)], at=NOW)
    plant(
        "blend", item, [c[1]], ["control"], [9], [(0, 1, "like", None)], at=NOW - timedelta(days=30)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into rec_impressions (user_id, rec_request_id, media_item_id, position, "
            "source, request_context, created_at) values (%s, %s, %s, 1, 'test', '{}', %s)",
            [c[2], uuid.uuid4(), item.pk, NOW - timedelta(hours=1)],
        )
    return experiment, c, t


def column(arm, name, users):
    """One column of an Arm, in these users' order."""
    values = arm.impressions if name == "impressions" else arm.events[name]
    return [values[arm.user_ids.index(str(user))] for user in users]


def test_variant_counts_from_one_query(planted):
    _, c, t = planted

    arms = variant_counts("blend", population=None, window=WINDOW)

    assert sorted(arms["control"].user_ids) == sorted(str(u) for u in c)
    assert sorted(arms["treatment"].user_ids) == sorted(str(u) for u in t)
    assert column(arms["control"], "impressions", c) == [5, 3, 4, 2]
    assert column(arms["treatment"], "impressions", t) == [6, 4, 5]
    assert column(arms["control"], "like", c) == [2, 0, 1, 0]
    assert column(arms["treatment"], "like", t) == [3, 1, 1]
    assert column(arms["control"], "rating", [c[2]]) == [2]
    assert list(arms["control"].aligned([str(c[2])]).sums["rating"]) == [8.0]
    assert list(arms["control"].aligned([str(c[0])]).sums["like"]) == [0.0]
    assert column(arms["treatment"], "detail_open", [t[0]]) == [1]


def test_the_population_keeps_only_its_users_in_their_variant(planted):
    _, c, t = planted

    arms = variant_counts(
        "blend", population={"control": c[:2], "treatment": [t[0], c[2]]}, window=WINDOW
    )

    assert {variant: sorted(arm.user_ids) for variant, arm in arms.items()} == {
        "control": sorted([str(c[0]), str(c[1])]),
        "treatment": [str(t[0])],
    }


def test_rows_equal_the_lib_computation_on_the_same_numbers(planted):
    experiment, _, _ = planted
    metrics = list(Metric.objects.all())

    rows = metric_rows(experiment, None, WINDOW, metrics, "control")

    impressions = {"control": [5, 3, 4, 2], "treatment": [6, 4, 5]}
    likes = {"control": [2, 0, 1, 0], "treatment": [3, 1, 1]}
    expected = {
        "like_rate": ratio_lift(
            numerator=likes["treatment"],
            denominator=impressions["treatment"],
            control_numerator=likes["control"],
            control_denominator=impressions["control"],
        ),
        "dislike_rate": ratio_lift(
            numerator=[0, 0, 0],
            denominator=impressions["treatment"],
            control_numerator=[0, 1, 0, 0],
            control_denominator=impressions["control"],
        ),
        "likes_per_user": mean_lift(values=likes["treatment"], control_values=likes["control"]),
        # Rating users only: c0 rates 4, c2 rates 3 and 5 (mean 4); t1 rates 4.5 alone.
        "mean_rating": mean_lift(values=[4.5], control_values=[4.0, 4.0]),
        "users_with_like": proportion_lift(
            converted=3, exposed=3, control_converted=2, control_exposed=4
        ),
    }
    by_metric = {row["metric"]: row for row in rows}

    assert [row["metric"] for row in rows] == [m.key for m in metrics]
    assert all(list(row)[: len(ROW_KEYS)] == ROW_KEYS for row in rows)
    for key, lift in expected.items():
        row = by_metric[key]
        assert (row["kind"], row["variant"], row["sequential"]) == (
            Metric.objects.get(key=key).kind,
            "treatment",
            False,
        )
        for name in ROW_KEYS[3:12]:
            assert row[name] == pytest.approx(getattr(lift, name), abs=1e-12), (key, name)
        assert row.get("reason") == lift.reason
    assert by_metric["mean_rating"]["reason"] == ONE_USER
    assert [row["p_adjusted"] for row in rows] == pytest.approx(
        adjust_p_values([row["p_value"] for row in rows], "holm"), abs=1e-15
    )
    bh = metric_rows(experiment, None, WINDOW, metrics, "control", correction="bh")
    assert [row["p_adjusted"] for row in bh] == pytest.approx(
        adjust_p_values([row["p_value"] for row in rows], "bh"), abs=1e-15
    )
    assert not any(
        isinstance(v, float) and not math.isfinite(v) for row in rows for v in row.values()
    )
    assert json.loads(json.dumps(rows)) == rows


def test_an_empty_window_gives_reasons_not_numbers(planted):
    experiment, _, _ = planted

    rows = metric_rows(
        experiment,
        None,
        (NOW - timedelta(days=90), NOW - timedelta(days=60)),
        Metric.objects.all(),
        "control",
    )

    assert {row["reason"] for row in rows} == {"empty arm: no users in a variant"}
    assert {row["p_adjusted"] for row in rows} == {None}


def test_bad_arguments_are_refused(planted):
    experiment, _, _ = planted

    with pytest.raises(ValueError, match="holm, bh"):
        metric_rows(experiment, None, WINDOW, [], "control", correction="bonferroni")
    with pytest.raises(ValueError, match="not a variant"):
        metric_rows(experiment, None, WINDOW, [], "nope")


def test_the_experiments_metrics_primary_first_else_the_catalogue(db):
    experiment = ExperimentFactory(key="chosen")
    assert [m.key for m in experiment_metrics(experiment)] == sorted(
        Metric.objects.values_list("key", flat=True)
    )
    assert primary_metric(experiment) is None
    ExperimentMetric.objects.create(
        experiment=experiment, metric=Metric.objects.get(key="dislike_rate")
    )
    ExperimentMetric.objects.create(
        experiment=experiment, metric=Metric.objects.get(key="like_rate"), is_primary=True
    )

    assert [m.key for m in experiment_metrics(experiment)] == ["like_rate", "dislike_rate"]
    assert primary_metric(experiment).key == "like_rate"


def test_a_planted_five_percent_per_impression_like_lift_is_detected(db):
    """2,000 engaged users per arm (impressions 1 + Poisson(20), like propensity Beta(2, 8),
    treatment x 1.05): the ratio metric finds the lift, and its p-value is the direct
    delta-method computation on the planted numbers to 1e-6."""
    experiment = ActiveExperimentFactory(key="lift")
    item = MediaItemFactory()
    rng = np.random.default_rng(1305)
    x1, y1 = engaged_users(rng, 2000, lift=1.05)
    x0, y0 = engaged_users(rng, 2000)
    treatment, control = make_users(2000), make_users(2000)
    bulk_likes("lift", item, treatment, "treatment", y1, x1)
    bulk_likes("lift", item, control, "control", y0, x0)

    (row,) = metric_rows(
        experiment,
        {"control": control, "treatment": treatment},
        WINDOW,
        [Metric.objects.get(key="like_rate")],
        "control",
    )

    r1, v1 = direct_delta(x1.tolist(), y1.tolist())
    r0, v0 = direct_delta(x0.tolist(), y0.tolist())
    direct_p = 2 * stats.norm.sf(abs(r1 - r0) / math.sqrt(v1 + v0))
    assert row["value"] == pytest.approx(x1.sum() / y1.sum(), abs=1e-12)
    assert row["control_value"] == pytest.approx(x0.sum() / y0.sum(), abs=1e-12)
    assert row["p_value"] == pytest.approx(direct_p, abs=1e-6)
    assert row["p_value"] < 0.05 and row["abs_ci_low"] > 0 and row["rel_ci_low"] > 0
    assert row["rel_ci_low"] < 0.05 < row["rel_ci_high"]
