"""CUPED in the experiment results (issue 15, section 2) on the real PostgreSQL: each user's
pre-period (the N days before their first exposure in the phase) read in one query, a
variance reduction reported beside each metric, and the adjusted rows equal to the lib
computation on the counts the users produced through the deck and outcome services."""

import io
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from deck.services import deck_build
from recsys_experiments.db_roles import END_USER_ROLE, acting_as
from recsys_experiments.lib.statistics import Sequential, cuped_ratio_lift, ratio_lift
from telemetry.models import ExperimentMetric, Metric
from telemetry.results.analysis import experiment_results
from telemetry.results.metrics import pre_period_counts
from telemetry.services import outcomes_record
from tests.factories.catalog import MediaItemFactory
from tests.factories.experiments import ActiveExperimentFactory
from tests.factories.users import UserFactory
from tests.telemetry.results.test_phases_and_window import (
    assign,
    days_ago,
    like,
    phase,
    serve,
)

DECK = 10


def visit(user, at, propensity, rng, tag):
    """One deck through media_swipe_deck_v1 and a like on each card with the user's
    propensity through the outcome service, as the user; the rows back-dated to `at`
    (as the simulator does). Returns (variant or None, impressions, likes)."""
    with acting_as(END_USER_ROLE, user.pk):
        deck = deck_build(user=user, limit=DECK, platform="ios", app_version="3.0")
        liked = [item for item in deck["items"] if rng.random() < propensity]
        result = outcomes_record(
            user=user,
            outcomes=[
                {
                    "event_id": f"{tag}-{item['media_item_id']}",
                    "rec_request_id": deck["rec_request_id"],
                    "media_item_id": item["media_item_id"],
                    "outcome_type": "like",
                    "occurred_at": (at + timedelta(minutes=5)).isoformat(),
                }
                for item in liked
            ],
        )
    assert result["accepted"] == len(liked)
    with connection.cursor() as cursor:
        cursor.execute(
            "update rec_impressions set created_at = %s where rec_request_id = %s",
            [at, deck["rec_request_id"]],
        )
        cursor.execute(
            "update rec_outcomes set created_at = occurred_at where rec_request_id = %s",
            [deck["rec_request_id"]],
        )
    return deck["experiments"].get("cuped_test"), len(deck["items"]), len(liked)


@pytest.fixture
def history(db):
    """160 users with lasting like propensities ~ Beta(2, 5); 140 swiped a deck 4 days ago
    (before the experiment), the last 20 never did. The experiment started 2 days ago; a day
    ago every user (alternately control and treatment) got a tagged deck and liked with their
    propensity (+0.1 in treatment).
    Returns the experiment and, per user, (variant, post impressions, post likes, pre
    impressions, pre likes) as the services stored them."""
    rng = np.random.default_rng(15)
    MediaItemFactory.create_batch(40)
    users = [UserFactory() for _ in range(160)]
    propensity = rng.beta(2, 5, len(users))
    pre = {}
    for n, user in enumerate(users[:140]):
        _, impressions, likes = visit(user, days_ago(4), propensity[n], rng, "pre")
        pre[str(user.pk)] = (impressions, likes)
    experiment = ActiveExperimentFactory(key="cuped_test", started_at=days_ago(2))
    phase(experiment, 1, days_ago(2))
    for key, primary in (("like_rate", True), ("users_with_like", False)):
        ExperimentMetric.objects.create(
            experiment=experiment, metric=Metric.objects.get(key=key), is_primary=primary
        )
    ExperimentMetric.objects.create(
        experiment=experiment, metric=Metric.objects.get(key="likes_per_user")
    )
    observed = {}
    for n, user in enumerate(users):
        # Stored as the hash would store it (sticky, auto), alternating: user ids are random
        # uuids, so hashing them would make the arms differ from run to run.
        variant = ("control", "treatment")[n % 2]
        assign(experiment, user, variant, at=days_ago(1.5))
        chance = min(1.0, propensity[n] + (0.1 if variant == "treatment" else 0.0))
        tagged, impressions, likes = visit(user, days_ago(1), chance, rng, "post")
        assert tagged == variant
        observed[str(user.pk)] = (variant, impressions, likes, *pre.get(str(user.pk), (0, 0)))
    return experiment, observed


def arms(observed, variant):
    rows = [row for row in observed.values() if row[0] == variant]
    return [np.array([row[k] for row in rows], dtype=float) for k in (2, 1, 4, 3)]


def test_results_are_cuped_adjusted_and_report_the_variance_reduction(history, settings):
    experiment, observed = history
    settings.RESULTS_CUPED_DAYS = 7

    # Fixed-horizon here; the sequential read of the same CUPED estimate is checked below.
    results = experiment_results(experiment, sequential=False)

    [row] = [r for r in results["metrics"] if r["metric"] == "like_rate"]
    y, d, x, e = arms(observed, "treatment")
    cy, cd, cx, ce = arms(observed, "control")
    # The users without a pre-period deck take part with X = 0 (zero pre-period counts).
    assert sum(1 for row_ in observed.values() if row_[3] == 0) == 20
    expected = cuped_ratio_lift(
        numerator=y,
        denominator=d,
        pre_numerator=x,
        pre_denominator=e,
        control_numerator=cy,
        control_denominator=cd,
        control_pre_numerator=cx,
        control_pre_denominator=ce,
    )
    assert row["cuped"] is True
    assert row["variance_reduction"] == pytest.approx(expected.variance_reduction, rel=1e-9)
    assert row["abs_lift"] == pytest.approx(expected.lift.abs_lift, rel=1e-9)
    assert row["p_value"] == pytest.approx(expected.lift.p_value, rel=1e-9)
    assert row["variance_reduction"] > 0.1
    # Same expectation as the plain estimate: they differ by theta times the chance pre-period
    # imbalance, well inside the plain standard error; both intervals hold the planted +0.1.
    plain = ratio_lift(numerator=y, denominator=d, control_numerator=cy, control_denominator=cd)
    plain_se = (plain.abs_ci_high - plain.abs_ci_low) / (2 * 1.96)
    assert abs(row["abs_lift"] - plain.abs_lift) < plain_se
    assert row["abs_ci_low"] < 0.1 < row["abs_ci_high"]
    assert row["abs_ci_high"] - row["abs_ci_low"] < plain.abs_ci_high - plain.abs_ci_low
    for other in results["metrics"]:
        assert other["cuped"] is True and other["variance_reduction"] is not None
    # The experiment's default, sequential: the confidence sequence on the CUPED standard error.
    [row] = [r for r in experiment_results(experiment)["metrics"] if r["metric"] == "like_rate"]
    sequential = cuped_ratio_lift(
        numerator=y, denominator=d, pre_numerator=x, pre_denominator=e,
        control_numerator=cy, control_denominator=cd, control_pre_numerator=cx,
        control_pre_denominator=ce, sequential=Sequential(settings.RESULTS_SEQUENTIAL_TUNING),
    )  # fmt: skip
    assert row["sequential"] is True and row["cuped"] is True
    assert (row["abs_ci_low"], row["abs_ci_high"], row["p_value"]) == pytest.approx(
        (sequential.lift.abs_ci_low, sequential.lift.abs_ci_high, sequential.lift.p_value),
        rel=1e-9,
    )
    assert row["std_error"] == pytest.approx(expected.lift.std_error, rel=1e-9)


def test_cuped_days_zero_gives_the_plain_rows(history, settings):
    experiment, observed = history
    settings.RESULTS_CUPED_DAYS = 0

    results = experiment_results(experiment, sequential=False)
    [row] = [r for r in results["metrics"] if r["metric"] == "like_rate"]

    y, d, _, _ = arms(observed, "treatment")
    cy, cd, _, _ = arms(observed, "control")
    plain = ratio_lift(numerator=y, denominator=d, control_numerator=cy, control_denominator=cd)
    assert row["cuped"] is False and row["variance_reduction"] is None
    assert row["abs_lift"] == pytest.approx(plain.abs_lift, abs=1e-12)
    assert row["p_value"] == pytest.approx(plain.p_value, abs=1e-12)


def test_report_and_results_page_show_the_variance_reduction(history, settings, client, staff_user):
    experiment, _ = history
    settings.RESULTS_CUPED_DAYS = 7
    [row] = [r for r in experiment_results(experiment)["metrics"] if r["metric"] == "like_rate"]
    shown = f"{row['variance_reduction']:.0%}"

    out = io.StringIO()
    call_command("experiment_report", "cuped_test", stdout=out)
    assert "CUPED" in out.getvalue() and shown in out.getvalue()

    client.force_login(staff_user)
    page = client.get(reverse("admin:experiment_results", args=[experiment.pk])).content.decode()
    assert "variance reduction" in page and shown in page


def test_pre_period_is_the_n_days_before_the_first_exposure_in_the_phase(db):
    """First exposure a day ago. Counted: impressions in the 7 days before it (tagged with
    another experiment or not at all) and the outcomes on them that occurred before it.
    Not counted: an impression 9 days ago, a like that came after the exposure."""
    item = MediaItemFactory()
    a, b = UserFactory(), UserFactory()
    serve(a, item, "elsewhere", "x", days_ago(9))
    old_like = serve(a, item, "elsewhere", "x", days_ago(3))
    like(a, old_like, item, days_ago(3))
    late = serve(a, item, "elsewhere", "x", days_ago(2))
    like(a, late, item, days_ago(0.5))  # after the exposure: could carry the treatment
    serve(a, item, "other_experiment", "y", days_ago(1.5))
    serve(a, item, "pre_test", "control", days_ago(1))
    serve(a, item, "pre_test", "control", days_ago(0.5))
    serve(b, item, "pre_test", "treatment", days_ago(1))  # nothing before: absent (X = 0)
    window = (days_ago(1), None)

    week = pre_period_counts("pre_test", window=window, phase_start=days_ago(2), days=7)
    day = pre_period_counts("pre_test", window=window, phase_start=days_ago(2), days=1)

    assert week.user_ids == [str(a.pk)]
    assert (week.impressions[0], week.events["like"][0]) == (3, 1)
    assert (day.impressions[0], day.events["like"][0]) == (2, 0)
    # Exposures before the phase start do not move the pre-period: a user first exposed in an
    # earlier phase is excluded from the results anyway.
    later = pre_period_counts("pre_test", window=window, phase_start=days_ago(0.75), days=1)
    assert later.user_ids == [str(a.pk)]
    assert (later.impressions[0], later.events["like"][0]) == (2, 0)
