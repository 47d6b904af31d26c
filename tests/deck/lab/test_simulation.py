"""The simulator recovers known effects through the real deck and outcome path. Small runs
with large effects keep this fast; the 4,000-user acceptance run is documented in
docs/recsys-experiments.md."""

import io
import json

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from deck.lab.simulation import compare_with_truth
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


def test_a_large_effect_is_recovered_through_the_real_paths(catalog_items):
    run = simulate(
        "--experiment", "sim_test", "--users", "600", "--effect", "like=+0.3", "--seed", "4"
    )

    # Users get fresh random ids, so each run draws new variants: assert what holds on every
    # run (within 4 standard errors: a 1-in-16,000 miss), not the 95% interval's coverage.
    like = like_row(run)
    assert abs(like["estimated_lift"] - 0.3) <= 4 * standard_error(like)
    assert like["p_value"] < 0.05
    assert run["results"]["srm"]["flagged"] is False
    assert Experiment.objects.get(key="sim_test").status == "active"
    # Real deck and outcome paths: tagged impressions and outcomes on them.
    assert (
        Impression.objects.filter(request_context__experiments__has_key="sim_test").count() == 6000
    )
    assert Outcome.objects.filter(outcome_type="like").exists()


def test_no_effect_gives_an_interval_around_zero(catalog_items):
    run = simulate("--experiment", "sim_null", "--users", "600", "--seed", "8")

    like = like_row(run)
    assert like["true_lift"] == 0
    assert abs(like["estimated_lift"]) <= 4 * standard_error(like)


def test_covered_says_whether_the_interval_holds_the_truth():
    results = {
        "comparisons": [
            {
                "variant": "t",
                "outcome_type": "like",
                "abs_lift": 0.06,
                "ci_low": 0.03,
                "ci_high": 0.09,
                "p_value": 0.001,
            },
            {
                "variant": "t",
                "outcome_type": "dislike",
                "abs_lift": 0.04,
                "ci_low": 0.01,
                "ci_high": 0.07,
                "p_value": 0.01,
            },
            {
                "variant": "t",
                "outcome_type": "rating",
                "abs_lift": None,
                "ci_low": None,
                "ci_high": None,
                "p_value": None,
            },
        ]
    }

    rows = compare_with_truth(results, {"like": 0.05})

    assert [(r["outcome_type"], r["true_lift"], r["covered"]) for r in rows] == [
        ("like", 0.05, True),
        ("dislike", 0.0, False),
        ("rating", 0.0, None),
    ]


def test_dropped_exposures_are_flagged_as_sample_ratio_mismatch(catalog_items):
    run = simulate(
        "--experiment", "sim_srm", "--users", "800", "--drop-exposures", "treatment=0.5"
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
            "simulate", "--experiment", "guarded_sim", "--users", "400", "--effect", "like=-0.3",
            "--report-dir", str(tmp_path), stdout=out, stderr=io.StringIO(),
        )  # fmt: skip

    assert raised.value.returncode == 1
    [bundle] = list(tmp_path.iterdir())
    assert {path.name for path in bundle.iterdir()} == {
        "summary.md",
        "results.json",
        "arguments.json",
    }
    assert "| treatment | like | -0.3000 |" in (bundle / "summary.md").read_text()
    assert json.loads((bundle / "arguments.json").read_text())["effects"] == {"like": -0.3}


def test_a_batch_file_writes_a_pass_fail_summary(catalog_items, tmp_path):
    batch = tmp_path / "batch.yaml"
    batch.write_text(
        yaml.safe_dump(
            [
                {
                    "experiment": "batch_a",
                    "users": 400,
                    "effect": {"like": 0.3},
                    "seed": 2,
                    "expect": {"significant": True},
                },
                {"experiment": "batch_b", "users": 400, "seed": 3, "expect": {"srm_flagged": True}},
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
