"""The simulator recovers known effects through the real deck and outcome path. Small runs
with large effects keep this fast; the 4,000-user acceptance run is documented in
docs/recsys-experiments.md.

Every random draw of a run comes from its seed (users, their ids, variants, behaviour), so a
seed on a given database gives one exact report: these tests pin that, and their statistical
checks hold for the fixed seeds (a planted effect is found, no effect is covered by the CI)."""

import io
import json
from pathlib import Path

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from deck.lab.runs import check_expectations
from deck.lab.simulation import compare_with_truth
from recsys_experiments.lib.guardrails import OUTCOME_TYPES
from recsys_experiments.models import Experiment
from telemetry.models import Impression, Outcome
from tests.factories.catalog import MediaItemFactory


@pytest.fixture
def catalog_items(db):
    return MediaItemFactory.create_batch(60)


def like_row(run) -> dict:
    [like] = [row for row in run["truth"] if row["outcome_type"] == "like"]
    return like


def standard_error(row) -> float:
    return (row["ci_high"] - row["ci_low"]) / (2 * 1.959964)


def simulate(*args):
    out = io.StringIO()
    call_command("simulate", *args, "--json", stdout=out, stderr=io.StringIO())
    return json.loads(out.getvalue())


def timeless(run: dict) -> dict:
    """The run without the clock: its window ends now, its phases started when it ran, the
    experiment's snapshot carries its live timestamps, and the power estimate's arrivals per
    day follow the window."""
    clocked = {"window", "phase", "phases", "power"}
    results = {k: v for k, v in run["results"].items() if k not in clocked}
    return {"results": results, "truth": run["truth"], "arguments": run["arguments"]}


def test_a_per_impression_effect_is_recovered_by_like_rate(catalog_items, settings):
    # 200 users: the always-valid intervals tuned for that sample (n*), not the default 5,000.
    settings.RESULTS_SEQUENTIAL_TUNING = 200
    args = ("--experiment", "sim_test", "--users", "200", "--effect", "like=+0.15", "--seed", "4")
    first = simulate(*args)

    run = simulate(*args)

    # The same seed in a fresh scratch database: the same users, variants and outcomes.
    assert timeless(run) == timeless(first) and run["run_id"] == first["run_id"]
    like = like_row(run)
    assert like["metric"] == "like_rate" and like["true_lift"] == 0.15
    assert abs(like["estimated_lift"] - 0.15) <= 4 * standard_error(like)
    assert like["significant"] is True and like["p_value"] < 0.05
    [metric] = [row for row in run["results"]["metrics"] if row["metric"] == "like_rate"]
    assert like["estimated_lift"] == metric["abs_lift"]
    assert run["results"]["srm"]["flagged"] is False
    # Real deck and outcome paths (10 impressions per user, all exposed) ...
    exposed = sum(variant["exposed_users"] for variant in run["results"]["variants"])
    assert exposed == 200
    # ... in a scratch database: nothing of the run reached the live one.
    assert not get_user_model().objects.filter(username__startswith="sim_").exists()
    assert not Experiment.objects.filter(key="sim_test").exists()
    assert Impression.objects.count() == 0 and Outcome.objects.count() == 0


def test_no_effect_gives_an_interval_around_zero(catalog_items):
    run = simulate("--experiment", "sim_null", "--users", "200", "--seed", "10")

    like = like_row(run)
    assert like["metric"] == "like_rate" and like["true_lift"] == 0
    assert like["covered"] is True and like["ci_low"] <= 0 <= like["ci_high"]
    assert abs(like["estimated_lift"]) <= 4 * standard_error(like)
    assert all(row["covered"] is not False for row in run["truth"])


def test_a_fixture_gives_the_users_its_segments(catalog_items):
    sample = Path(__file__).parents[3] / "docs" / "fixtures" / "media_catalog.yaml"

    run = simulate("--experiment", "sim_segments", "--users", "20", "--fixture", str(sample))

    segments = {segment["name"]: segment for segment in run["arguments"]["segments"]}
    assert set(segments) == {"binge_watchers", "casual"}
    assert all(set(s["propensities"]) == set(OUTCOME_TYPES) for s in segments.values())


def metric_row(metric, abs_lift, low, high, p_value) -> dict:
    return {
        "metric": metric,
        "variant": "t",
        "abs_lift": abs_lift,
        "abs_ci_low": low,
        "abs_ci_high": high,
        "p_value": p_value,
    }


def test_truth_rows_judge_the_per_impression_ratio_metric_of_each_type():
    results = {
        "metrics": [
            metric_row("like_rate", 0.06, 0.03, 0.09, 0.001),
            metric_row("likes_per_user", 0.6, 0.3, 0.9, 0.001),
            metric_row("dislike_rate", 0.04, 0.01, 0.07, 0.01),
            metric_row("watchlist_rate", None, None, None, None),
        ]
    }
    metrics = {"like": "like_rate", "dislike": "dislike_rate", "watchlist": "watchlist_rate"}

    rows = compare_with_truth(results, {"like": 0.05, "rating": 0.1}, metrics)

    assert [
        (r["outcome_type"], r["metric"], r["true_lift"], r["covered"], r["significant"])
        for r in rows
    ] == [
        ("like", "like_rate", 0.05, True, True),
        ("dislike", "dislike_rate", 0.0, False, True),
        ("watchlist", "watchlist_rate", 0.0, None, None),
        ("rating", None, 0.1, None, None),
    ]


def test_a_batch_expectation_judges_the_planted_type():
    rows = compare_with_truth(
        {"metrics": [metric_row("like_rate", 0.06, 0.03, 0.09, 0.001)]},
        {"like": 0.05},
        {"like": "like_rate"},
    )
    run = {"results": {"srm": {"flagged": False}, "guardrails_passed": True}, "truth": rows}

    assert check_expectations(run, {"covered": True, "significant": True}) == {
        "guardrails_passed": True,
        "covered": True,
        "significant": True,
    }
    run["truth"] = compare_with_truth(
        {"metrics": [metric_row("like_rate", 0.06, 0.03, 0.09, 0.001)]}, {}, {"like": "like_rate"}
    )
    assert check_expectations(run, {"covered": True, "significant": False}) == {
        "guardrails_passed": True,
        "covered": False,
        "significant": True,
    }


def test_dropped_exposures_are_flagged_as_sample_ratio_mismatch(catalog_items):
    run = simulate(
        "--experiment", "sim_srm", "--users", "300", "--drop-exposures", "treatment=0.5"
    )  # fmt: skip

    assert run["results"]["srm"]["flagged"] is True


def test_report_bundle_and_guardrail_exit_code(catalog_items, tmp_path):
    Experiment.objects.create(
        key="guarded_sim",
        variants=[
            {"name": "control", "weight": 0.5, "config": {}},
            {"name": "treatment", "weight": 0.5, "config": {}},
        ],
        salt="guard",
        guardrails=[{"metric": "like_rate", "max_drop": 0.02}],
    )
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command(
            "simulate", "--experiment", "guarded_sim", "--users", "200", "--effect", "like=-0.3",
            "--report-dir", str(tmp_path), stdout=out, stderr=io.StringIO(),
        )  # fmt: skip

    assert raised.value.returncode == 1
    [bundle] = list(tmp_path.iterdir())
    assert {path.name for path in bundle.iterdir()} == {
        "summary.md",
        "results.json",
        "arguments.json",
        "experiment.json",
        "experiments.json",
        "profile.json",
        "code.json",
        "manifest.json",
    }
    experiment = json.loads((bundle / "experiment.json").read_text())
    assert experiment["salt"] == "guard" and experiment["guardrails"] == [
        {"metric": "like_rate", "max_drop": 0.02}
    ]
    assert "| treatment | like | -0.3000 |" in (bundle / "summary.md").read_text()
    assert json.loads((bundle / "arguments.json").read_text())["effects"] == {"like": -0.3}


def test_a_batch_file_writes_a_pass_fail_summary(catalog_items, tmp_path):
    batch = tmp_path / "batch.yaml"
    batch.write_text(
        yaml.safe_dump(
            [
                {
                    "experiment": "batch_a",
                    "users": 200,
                    "effect": {"like": 0.3},
                    "seed": 2,
                    "expect": {"significant": True},
                },
                {"experiment": "batch_b", "users": 200, "seed": 3, "expect": {"srm_flagged": True}},
            ]
        )
    )
    out = io.StringIO()
    with pytest.raises(CommandError):  # the second run has no imbalance: its expectation fails
        call_command(
            "simulate", "--batch-file", str(batch), "--report-dir", str(tmp_path / "out"),
            stdout=out, stderr=io.StringIO(),
        )  # fmt: skip

    summary = json.loads((tmp_path / "out" / "batch-summary.json").read_text())
    assert [run["passed"] for run in summary["runs"]] == [True, False]
    assert "FAIL" in (tmp_path / "out" / "batch-summary.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--experiment", "x_sim", "--users", "1"], "users"),
        (["--experiment", "x_sim", "--effect", "love=+0.1"], "effect"),
        (["--experiment", "x_sim", "--drop-exposures", "treatment=2"], "drop-exposures"),
        ([], "--experiment is required"),
    ],
)
def test_bad_arguments_are_one_line_errors(catalog_items, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("simulate", *args, stdout=io.StringIO(), stderr=io.StringIO())
