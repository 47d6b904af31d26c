"""Catalogue metrics over conversions (issue 15, section 3) on the real PostgreSQL: conversions
recorded through POST /api/v1/conversions by users in two variants with a planted difference;
the metric rows equal a direct computation on the same data (scipy's Welch test for means,
statsmodels' z-test for proportions, the delta method written out for ratios); a conversion
counts only for the variant its experiments tag names, in the window, for an exposed user; and
CUPED reads each user's conversions before their first exposure."""

import io
import json
import math
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest

from recsys_experiments.lib.statistics import cuped_mean_lift
from recsys_experiments.models import Experiment
from telemetry.models import Conversion, ExperimentMetric, Metric
from telemetry.results.analysis import experiment_results
from telemetry.results.metrics import conversion_counts
from tests.factories.catalog import MediaItemFactory
from tests.factories.experiments import ActiveExperimentFactory
from tests.factories.users import UserFactory
from tests.telemetry.results.test_phases_and_window import assign, phase, serve

USERS = 120
WATCH_BOOST = 40.0  # seconds added to each treatment watch session
BUY_BOOST = 0.15  # added to the chance that an add-to-cart ends in a purchase
# Planted in the wrong place: would show up in every total if it were counted.
STRAY = 1_000_000.0

METRICS = {
    # key: (kind, numerator, numerator_name, denominator, denominator_name, value)
    "watch_time": ("mean", "conversion", "watch_seconds", None, None, "sum"),
    "mean_watch": ("mean", "conversion", "watch_seconds", None, None, "mean"),
    "purchases_per_user": ("mean", "conversion", "purchase", None, None, "count"),
    "buyers": ("proportion", "conversion", "purchase", None, None, "count"),
    "purchase_per_cart": ("ratio", "conversion", "purchase", "conversion", "add_to_cart", "count"),
    "purchases_per_impression": ("ratio", "conversion", "purchase", "impression", None, "count"),
}


def fixed_horizon() -> dict:
    """Fixed-horizon inference, where the experiment can choose (the sequential part of this
    issue adds the flag): these tests compare with the classical tests."""
    fields = {f.name for f in Experiment._meta.get_fields()}
    return {"sequential_testing": False} if "sequential_testing" in fields else {}


def conv(event_id, name, value, at, **metadata):
    return {
        "event_id": event_id,
        "metric_name": name,
        "value": value,
        "metadata": metadata,
        "occurred_at": at.isoformat(),
    }


def record(client, user, conversions):
    """Conversions through the API, as the user's app sends them; all must be accepted."""
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user)[1]}")
    response = client.post(
        "/api/v1/conversions",
        json.dumps({"conversions": conversions}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == len(conversions), response.json()


@pytest.fixture
def world(db):
    """Experiment value_test (started 2 days ago; phase 1): 120 users alternately in control
    and treatment, assigned 1.5 days ago, served 1-3 tagged impressions a day ago. Each then
    watched Poisson(2 x taste) sessions of Gamma(2, 15 x taste) seconds (+40 s in treatment),
    with taste ~ Gamma(2, 1) per user, and put Poisson(2)
    items in the cart, each bought with chance 0.3 (+0.15 in treatment) at a uniform price.
    Two users in three watched before the experiment too (3 days ago, correlated with their
    later watching through one taste per user). Strays that must not count: purchases before
    the user's assignment (tagged with nothing, or with another experiment only), a purchase
    tagged with the other variant, purchases after the window's end (the results are read 12
    hours ago) and a purchase of an assigned user who was never served.
    Returns (experiment, now, {user id: planted}) with planted = (variant, impressions, watch
    values, purchase values, add-to-carts, pre-period watch values)."""
    now = timezone.now()

    def ago(days):
        return now - timedelta(days=days)

    rng = np.random.default_rng(2002)
    item = MediaItemFactory()
    experiment = ActiveExperimentFactory(key="value_test", started_at=ago(2), **fixed_horizon())
    phase(experiment, 1, ago(2))
    other = ActiveExperimentFactory(key="other_exp", started_at=ago(3))
    phase(other, 1, ago(3))
    for key, fields in METRICS.items():
        kind, numerator, numerator_name, denominator, denominator_name, value = fields
        metric = Metric.objects.create(
            key=key,
            name=key,
            kind=kind,
            numerator=numerator,
            numerator_name=numerator_name,
            denominator=denominator,
            denominator_name=denominator_name,
            value=value,
        )
        ExperimentMetric.objects.create(
            experiment=experiment, metric=metric, is_primary=key == "watch_time"
        )
    client, planted = APIClient(), {}
    for n in range(USERS):
        user = UserFactory()
        variant = ("control", "treatment")[n % 2]
        treated = variant == "treatment"
        taste = rng.gamma(2.0, 1.0)  # how much this user watches, before and after
        pre_sessions = int(rng.poisson(2 * taste)) if n % 3 else 0
        pre_watch = [round(float(rng.gamma(2, 15 * taste)), 1) for _ in range(pre_sessions)]
        if n % 5 == 0:
            assign(other, user, "control", at=ago(1.9))
        assign(experiment, user, variant, at=ago(1.5))
        impressions = 1 + int(rng.integers(0, 3))
        for _ in range(impressions):
            serve(user, item, "value_test", variant, ago(1))
        watch = [
            round(float(rng.gamma(2, 15 * taste)) + (WATCH_BOOST if treated else 0), 1)
            for _ in range(int(rng.poisson(2 * taste)))
        ]
        carts = int(rng.poisson(2))
        bought = int(rng.binomial(carts, 0.3 + (BUY_BOOST if treated else 0)))
        prices = [round(float(rng.uniform(5, 50)), 2) for _ in range(bought)]
        stray_before = [STRAY] if n % 5 == 0 else []  # before assignment: tag {} or other_exp
        conversions = [
            *(conv(f"pre-w{j}", "watch_seconds", v, ago(3)) for j, v in enumerate(pre_watch)),
            *(conv(f"pre-p{j}", "purchase", v, ago(1.6)) for j, v in enumerate(stray_before)),
            *(
                conv(f"w{j}", "watch_seconds", v, ago(0.9) + timedelta(minutes=j), title_id=j)
                for j, v in enumerate(watch)
            ),
            *(
                conv(f"c{j}", "add_to_cart", 1, ago(0.8) + timedelta(minutes=j))
                for j in range(carts)
            ),
            *(
                conv(f"p{j}", "purchase", v, ago(0.7) + timedelta(minutes=j), currency="EUR")
                for j, v in enumerate(prices)
            ),
            *([conv("late", "purchase", STRAY, ago(0.2))] if n % 7 == 0 else []),
        ]
        if conversions:
            record(client, user, conversions)
        if n % 11 == 0:
            # Tagged with the other variant (written directly, as no API call could).
            with connection.cursor() as cursor:
                cursor.execute(
                    "insert into rec_conversions (user_id, event_id, metric_name, value, "
                    "metadata, occurred_at, request_context) values (%s, 'wrong-variant', "
                    "'purchase', %s, '{}', %s, %s::jsonb)",
                    [
                        user.pk,
                        STRAY,
                        ago(0.75),
                        json.dumps(
                            {"experiments": {"value_test": ("treatment", "control")[n % 2]}}
                        ),
                    ],
                )
        planted[str(user.pk)] = (variant, impressions, watch, prices, carts, pre_watch)
    # Assigned and converting, never served: not exposed, so never counted.
    absent = UserFactory()
    assign(experiment, absent, "treatment", at=ago(1.5))
    record(client, absent, [conv("x", "purchase", STRAY, ago(1))])
    return experiment, now, planted


def per_user(planted, variant):
    """Per user of the variant: impressions, watch sum, watch count, purchases, revenue,
    add-to-carts, pre-period watch sum."""
    rows = [p for p in planted.values() if p[0] == variant]
    return {
        "impressions": np.array([p[1] for p in rows], dtype=float),
        "watch_sum": np.array([sum(p[2]) for p in rows]),
        "watch_count": np.array([len(p[2]) for p in rows], dtype=float),
        "watch_mean": np.array([np.mean(p[2]) for p in rows if p[2]]),
        "purchases": np.array([len(p[3]) for p in rows], dtype=float),
        "carts": np.array([p[4] for p in rows], dtype=float),
        "pre_watch_sum": np.array([sum(p[5]) for p in rows]),
    }


def welch(a, b):
    """(difference, CI low, CI high, p) of Welch's t-test of a against b, from scipy."""
    test = stats.ttest_ind(a, b, equal_var=False)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    diff = a.mean() - b.mean()
    return diff, diff - half, diff + half, test.pvalue


def delta_ratio(x, y):
    """sum(x) / sum(y) and its delta-method variance (user-level clustering), written out."""
    n, mx, my = len(x), x.mean(), y.mean()
    r = mx / my
    sxx, syy = x.var(ddof=1), y.var(ddof=1)
    sxy = ((x - mx) * (y - my)).sum() / (n - 1)
    return r, (sxx - 2 * r * sxy + r**2 * syy) / (n * my**2)


def rows_by_metric(results):
    return {row["metric"]: row for row in results["metrics"]}


def test_value_metrics_equal_a_direct_computation(world, settings):
    experiment, now, planted = world
    settings.RESULTS_CUPED_DAYS = 0
    t, c = per_user(planted, "treatment"), per_user(planted, "control")

    results = experiment_results(experiment, now=now - timedelta(hours=12))
    rows = rows_by_metric(results)

    assert [v["exposed_users"] for v in results["variants"]] == [60, 60]
    for key, (a, b) in {
        "watch_time": (t["watch_sum"], c["watch_sum"]),
        "mean_watch": (t["watch_mean"], c["watch_mean"]),
        "purchases_per_user": (t["purchases"], c["purchases"]),
    }.items():
        row = rows[key]
        diff, low, high, p = welch(a, b)
        assert row["value"] == pytest.approx(a.mean(), rel=1e-12), key
        assert row["control_value"] == pytest.approx(b.mean(), rel=1e-12), key
        assert row["abs_lift"] == pytest.approx(diff, rel=1e-9), key
        assert (row["abs_ci_low"], row["abs_ci_high"]) == pytest.approx((low, high), rel=1e-9)
        assert row["p_value"] == pytest.approx(p, rel=1e-9), key
    # The intervals cover the planted differences: 40 s x E[sessions] = 40 x 2 x E[taste]
    # = 160 s of watch time, and 2 add-to-carts x 0.15 = 0.3 purchases per user.
    assert rows["watch_time"]["abs_ci_low"] < 160 < rows["watch_time"]["abs_ci_high"]
    assert (
        rows["purchases_per_user"]["abs_ci_low"] < 0.3 < rows["purchases_per_user"]["abs_ci_high"]
    )

    buyers = rows["buyers"]
    counts = [int((t["purchases"] > 0).sum()), int((c["purchases"] > 0).sum())]
    _, p = proportions_ztest(counts, [60, 60])
    assert (buyers["value"], buyers["control_value"]) == (counts[0] / 60, counts[1] / 60)
    assert buyers["p_value"] == pytest.approx(p, rel=1e-9)

    for key, (tx, ty, cx, cy) in {
        "purchase_per_cart": (t["purchases"], t["carts"], c["purchases"], c["carts"]),
        "purchases_per_impression": (
            t["purchases"],
            t["impressions"],
            c["purchases"],
            c["impressions"],
        ),
    }.items():
        row = rows[key]
        r1, v1 = delta_ratio(tx, ty)
        r0, v0 = delta_ratio(cx, cy)
        se = math.sqrt(v1 + v0)
        assert (row["value"], row["control_value"]) == pytest.approx((r1, r0), rel=1e-12)
        assert row["abs_lift"] == pytest.approx(r1 - r0, rel=1e-9)
        assert row["abs_ci_low"] == pytest.approx(r1 - r0 - stats.norm.ppf(0.975) * se, rel=1e-9)
        assert row["p_value"] == pytest.approx(2 * stats.norm.sf(abs(r1 - r0) / se), rel=1e-9), key


def test_a_conversion_counts_only_for_its_tagged_variant_in_the_window(world):
    _, now, planted = world
    # The first user (n = 0, control) has every stray: a purchase before their assignment
    # (tagged with other_exp only), one tagged with the other variant, one after the window.
    user_id = next(iter(planted))
    stored = {c.event_id: c for c in Conversion.objects.filter(user_id=user_id)}
    window = (now - timedelta(days=2), now - timedelta(hours=12))

    counted = conversion_counts("value_test", {"purchase", "watch_seconds"}, window=window)

    assert stored["pre-p0"].request_context == {"experiments": {"other_exp": "control"}}
    assert stored["wrong-variant"].request_context == {"experiments": {"value_test": "treatment"}}
    assert stored["late"].request_context == {
        "experiments": {"other_exp": "control", "value_test": "control"}
    }
    _, _, watch, prices, *_ = planted[user_id]
    found = counted.get((user_id, "control"), {})
    assert found.get("purchase", (0, 0.0)) == (len(prices), pytest.approx(sum(prices)))
    assert found.get("watch_seconds", (0, 0.0)) == (len(watch), pytest.approx(sum(watch)))
    assert (user_id, "treatment") not in counted
    # Across everyone: exactly the planted in-window conversions, no stray in any total.
    assert all(total < STRAY for found in counted.values() for _, total in found.values())
    assert sum(found.get("purchase", (0, 0))[0] for found in counted.values()) == sum(
        len(p[3]) for p in planted.values()
    )
    assert len(counted) == sum(1 for p in planted.values() if p[2] or p[3])


def test_cuped_uses_each_users_conversions_before_their_first_exposure(world, settings):
    experiment, now, planted = world
    settings.RESULTS_CUPED_DAYS = 7
    t, c = per_user(planted, "treatment"), per_user(planted, "control")

    rows = rows_by_metric(experiment_results(experiment, now=now - timedelta(hours=12)))

    expected = cuped_mean_lift(
        values=t["watch_sum"],
        covariates=t["pre_watch_sum"],
        control_values=c["watch_sum"],
        control_covariates=c["pre_watch_sum"],
    )
    row = rows["watch_time"]
    assert row["cuped"] is True
    assert row["value"] == pytest.approx(expected.lift.value, rel=1e-9)
    assert row["abs_lift"] == pytest.approx(expected.lift.abs_lift, rel=1e-9)
    assert row["variance_reduction"] == pytest.approx(expected.variance_reduction, rel=1e-9)
    # Pre-period watching predicts later watching (one taste per user): the variance falls,
    # and the interval narrows around the planted 160 s.
    assert row["variance_reduction"] > 0.1
    assert row["abs_ci_low"] < 160 < row["abs_ci_high"]
    # Purchases' pre-period is the strays before assignment (every fifth user): counted as the
    # covariate, never as an outcome.
    assert rows["purchases_per_user"]["variance_reduction"] is not None


def test_report_and_results_page_show_the_conversion_metrics(world, client, staff_user):
    experiment, _, _ = world

    out = io.StringIO()
    call_command("experiment_report", "value_test", stdout=out)
    client.force_login(staff_user)
    page = client.get(reverse("admin:experiment_results", args=[experiment.pk])).content.decode()

    for key in METRICS:
        assert key in out.getvalue()
        assert key in page
    # The kind column says what each one counts.
    assert "ratio: purchase / add_to_cart" in page
    assert "mean: sum of watch_seconds per user" in page
    assert "proportion: users with ≥1 purchase" in page
