"""Guardrails judged on the metric's confidence interval (issue 13, section 3): a variant
fails only when the whole interval of its lift lies beyond the allowed drop (or rise); an
uncertain or small change passes; no data is "not enough data", never passed."""

import io
import json
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from recsys_experiments.lib.constants import CATALOGUE_METRICS
from recsys_experiments.lib.statistics import ratio_lift
from telemetry.models import ExperimentMetric, Metric
from telemetry.results.analysis import experiment_results
from tests.factories.catalog import MediaItemFactory
from tests.factories.experiments import ActiveExperimentFactory
from tests.factories.users import UserFactory
from tests.telemetry.results.test_phases_and_window import days_ago, phase

IMPRESSIONS = 10


def plant(key: str, likes: dict[str, list[int]]) -> object:
    """An experiment (one phase, 6 days old) whose users each saw IMPRESSIONS impressions;
    `likes[variant]` lists each user's likes. Rows go in with one executemany each. The limits
    below are set against fixed-horizon intervals (test_sequential.py judges a sequential one)."""
    experiment = ActiveExperimentFactory(key=key, started_at=days_ago(6), sequential_testing=False)
    phase(experiment, 1, days_ago(6))
    item = MediaItemFactory()
    impressions, outcomes, assignments = [], [], []
    for variant, per_user in likes.items():
        for user, count in zip(UserFactory.create_batch(len(per_user)), per_user, strict=True):
            assignments.append((experiment.pk, user.pk, variant, "auto", 1, days_ago(5)))
            for n in range(IMPRESSIONS):
                request = uuid.uuid4()
                tags = json.dumps({"experiments": {key: variant}})
                impressions.append((user.pk, request, item.pk, tags, days_ago(4)))
                if n < count:
                    outcomes.append((uuid.uuid4().hex, user.pk, request, item.pk, days_ago(4)))
    with connection.cursor() as cursor:
        cursor.executemany(
            "insert into rec_user_experiment_assignments (experiment_id, user_id, variant, "
            "assignment_mode, phase, assigned_at) values (%s, %s, %s, %s, %s, %s)",
            assignments,
        )
        cursor.executemany(
            "insert into rec_impressions (user_id, rec_request_id, media_item_id, position, "
            "source, request_context, created_at) values (%s, %s, %s, 1, 'cf', %s::jsonb, %s)",
            impressions,
        )
        cursor.executemany(
            "insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id, "
            "outcome_type, occurred_at, created_at) values (%s, %s, %s, %s, 'like', %s, %s)",
            [(*row, row[-1]) for row in outcomes],
        )
    return experiment


CONTROL = [4, 5, 6] * 8  # 24 users, like rate 0.5


def guard(experiment, *guardrails):
    experiment.guardrails = list(guardrails)
    experiment.save()
    return experiment_results(experiment)


def test_a_harmful_variant_whose_whole_interval_is_beyond_the_drop_fails(db):
    treatment = [1, 2, 1] * 8  # like rate 0.133: a drop of 0.37
    experiment = plant("harmful", {"control": CONTROL, "treatment": treatment})
    # Only likes_per_user is listed: the guardrail's like_rate is computed all the same.
    ExperimentMetric.objects.create(
        experiment=experiment, metric=Metric.objects.get(key="likes_per_user")
    )

    results = guard(experiment, {"metric": "like_rate", "max_drop": 0.05})

    [result] = results["guardrails"]
    expected = ratio_lift(
        numerator=treatment,
        denominator=[IMPRESSIONS] * len(treatment),
        control_numerator=CONTROL,
        control_denominator=[IMPRESSIONS] * len(CONTROL),
    )
    assert result["status"] == "failed" and result["passed"] is False
    assert result["variant"] == "treatment"
    assert result["value"] == pytest.approx(expected.abs_lift)
    assert result["ci_low"] == pytest.approx(expected.abs_ci_low)
    assert result["ci_high"] == pytest.approx(expected.abs_ci_high) and result["ci_high"] < -0.05
    assert results["guardrails_passed"] is False
    assert [row["metric"] for row in results["metrics"]] == ["likes_per_user"]


def test_a_drop_whose_interval_reaches_inside_the_limit_passes(db):
    # A real drop (0.1, significant) beyond the 0.08 allowed by its point estimate, but its
    # interval reaches inside the limit: not shown to be harmful beyond it, so it passes.
    experiment = plant("modest", {"control": CONTROL, "treatment": [3, 4, 5] * 8})

    results = guard(experiment, {"metric": "like_rate", "max_drop": 0.08})

    [result] = results["guardrails"]
    assert result["value"] == pytest.approx(-0.1)
    assert result["ci_low"] < -0.08 < result["ci_high"] < 0
    assert result["status"] == "passed" and results["guardrails_passed"] is True


def test_an_uncertain_large_drop_passes(db):
    # Three users a side: the point estimate drops 0.3, but the interval is wide.
    experiment = plant("uncertain", {"control": [2, 8, 5], "treatment": [0, 5, 1]})

    results = guard(experiment, {"metric": "like_rate", "max_drop": 0.05})

    [result] = results["guardrails"]
    assert result["value"] == pytest.approx(-0.3)
    assert result["ci_low"] < -0.05 < result["ci_high"]
    assert result["status"] == "passed" and results["guardrails_passed"] is True


def test_a_rise_beyond_the_limit_fails_on_a_mean_metric(db):
    experiment = plant("rising", {"control": [1, 2, 1] * 8, "treatment": CONTROL})

    results = guard(experiment, {"metric": "likes_per_user", "max_rise": 1})

    [result] = results["guardrails"]
    assert result["value"] == pytest.approx(5 - 4 / 3)
    assert result["ci_low"] > 1 and result["status"] == "failed"


def test_no_exposed_users_is_not_enough_data_and_not_passed(db):
    experiment = ActiveExperimentFactory(key="empty", started_at=days_ago(6))
    phase(experiment, 1, days_ago(6))
    experiment.guardrails = [{"metric": "dislike_rate", "max_rise": 0.02}]
    experiment.save()

    results = experiment_results(experiment)

    [result] = results["guardrails"]
    assert result["status"] == "not enough data" and result["passed"] is False
    assert result["ci_low"] is None and result["reason"]
    assert results["guardrails_passed"] is False

    out, err = io.StringIO(), io.StringIO()
    call_command("experiment_report", "empty", stdout=out, stderr=err)  # exits 0
    assert "dislike_rate (treatment): max_rise 0.02: value —: not enough data" in out.getvalue()
    assert "not enough data: dislike_rate" in err.getvalue()


def test_experiment_report_exits_1_only_when_a_guardrail_fails(db):
    experiment = plant("report_exit", {"control": CONTROL, "treatment": [1, 2, 1] * 8})
    experiment.guardrails = [{"metric": "like_rate", "max_drop": 0.5}]
    experiment.save()
    call_command("experiment_report", "report_exit", stdout=io.StringIO())  # passes: exit 0

    experiment.guardrails = [
        {"metric": "like_rate", "max_drop": 0.05},
        {"metric": "dislike_rate", "max_rise": 0.05},  # no dislikes at all: no interval
    ]
    experiment.save()
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("experiment_report", "report_exit", stdout=out, stderr=io.StringIO())

    assert raised.value.returncode == 1 and "guardrail failed: like_rate" in str(raised.value)
    text = out.getvalue()
    assert "guardrail like_rate (treatment): max_drop 0.05: value -0.3667 CI [" in text
    assert "]: FAILED" in text
    assert "guardrail dislike_rate (treatment)" in text and "not enough data" in text


def test_the_results_page_shows_the_status_and_interval(client, staff_user, db):
    experiment = plant("paged", {"control": CONTROL, "treatment": [1, 2, 1] * 8})
    experiment.guardrails = [
        {"metric": "like_rate", "max_drop": 0.05},
        {"metric": "dislike_rate", "max_rise": 0.05},
    ]
    experiment.save()
    client.force_login(staff_user)

    page = client.get(f"/admin/recsys_experiments/experiment/{experiment.pk}/results/")

    html = page.content.decode()
    assert 'id="recsys-guardrails"' in html and "max drop 0.05" in html
    assert 'class="recsys-guardrail-failed"' in html
    assert 'class="recsys-guardrail-not-enough-data"' in html


def test_the_guardrail_metric_list_is_the_seeded_catalogue(db):
    assert set(Metric.objects.values_list("key", flat=True)) == set(CATALOGUE_METRICS)
