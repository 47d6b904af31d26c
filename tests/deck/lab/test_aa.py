"""The A/A harness (`manage.py aa_test`, deck/lab/aa.py): the real path in a scratch database
(the live tables untouched, the same numbers for the same seed), the fast path's calibration
(sequential false positives within 5%, daily peeking with the fixed test far above, SRM and
p-value uniformity), the fast path's hashing and statistics equal to the real path's, and
one-line errors for bad flags. Larger runs are marked `slow` (pytest -m slow)."""

import csv
import io
import json
import math
import random
import uuid
from datetime import UTC, datetime, time

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from deck.lab.aa import (
    AASpec,
    aa_spec,
    default_metrics,
    fast_lift,
    hash_points,
    look_of,
    real_run,
    run_fast,
    sequential_tuning,
    summarise,
    uuid_texts,
)
from deck.lab.demo import seed_demo
from recsys_experiments.lib.constants import CATALOGUE_METRICS
from recsys_experiments.lib.hashing import bucket_ranges, choose_variation, hash_point
from recsys_experiments.lib.statistics import Sequential, mean_lift, proportion_lift, ratio_lift
from recsys_experiments.models import Experiment
from telemetry.results.metrics import variant_counts
from tests.deck.lab.test_isolation import scratch_databases, table_fingerprints


def aa_test(*args) -> dict:
    out = io.StringIO()
    call_command("aa_test", *args, "--json", stdout=out, stderr=io.StringIO())
    return json.loads(out.getvalue())


def check_shape(summary: dict, runs: int, users: int, days: int, seed: int, mode: str) -> None:
    assert list(summary) == [
        "runs", "users", "days", "seed", "mode", "srm_false_alarm_rate", "metrics",
    ]  # fmt: skip
    assert (summary["runs"], summary["users"], summary["days"]) == (runs, users, days)
    assert (summary["seed"], summary["mode"]) == (seed, mode)
    assert 0 <= summary["srm_false_alarm_rate"] <= 1
    assert list(summary["metrics"]) == list(CATALOGUE_METRICS)
    for row in summary["metrics"].values():
        assert list(row) == [
            "false_positive_rate", "coverage", "sequential_coverage", "ks_p_value",
        ]  # fmt: skip
        assert list(row["false_positive_rate"]) == ["fixed", "sequential"]
        coverages = (row["coverage"], row["sequential_coverage"])
        for value in (*row["false_positive_rate"].values(), *coverages):
            assert 0 <= value <= 1
        # Always-valid intervals are wider: they cover whenever the fixed ones do.
        assert row["sequential_coverage"] >= row["coverage"]
        assert row["false_positive_rate"]["sequential"] <= row["false_positive_rate"]["fixed"]
        assert 0 <= row["ks_p_value"] <= 1


# --- the real path ---------------------------------------------------------------------------


@pytest.fixture
def live(db, settings):
    settings.RESULTS_SEQUENTIAL_TUNING = 120
    seed_demo(items=60, users=8, days=2, seed=7)


def test_real_path_leaves_the_live_database_identical_and_repeats_for_a_seed(live, tmp_path):
    before = table_fingerprints()
    assert before["rec_impressions"][0] > 0
    first = aa_test("--runs", "3", "--users", "40", "--days", "3", "--seed", "4",
                    "--report-dir", str(tmp_path))  # fmt: skip
    assert table_fingerprints() == before
    assert scratch_databases() == []
    check_shape(first, 3, 40, 3, 4, "real")
    assert aa_test("--runs", "3", "--users", "40", "--days", "3", "--seed", "4") == first
    assert aa_test("--runs", "3", "--users", "40", "--days", "3", "--seed", "5") != first
    # The bundle: arguments, code version, the summary, its table and the per-run p-values.
    bundle = tmp_path / "aa-real-seed4-3x40x3"
    assert {path.name for path in bundle.iterdir()} == {
        "arguments.json", "code.json", "summary.json", "details.json", "summary.md",
        "p_values.csv", "manifest.json",
    }  # fmt: skip
    assert json.loads((bundle / "summary.json").read_text()) == first
    arguments = json.loads((bundle / "arguments.json").read_text())
    assert arguments["sequential_tuning"] == 120 and arguments["mode"] == "real"
    rows = list(csv.DictReader(io.StringIO((bundle / "p_values.csv").read_text())))
    assert len(rows) == 3 * len(CATALOGUE_METRICS)
    assert {row["run"] for row in rows} == {"1", "2", "3"}
    assert "| like_rate |" in (bundle / "summary.md").read_text()


def test_fast_statistics_equal_the_real_path_on_the_same_counts(db, settings):
    """One real run in the test database; its users' counts (as the results read them) go
    through the fast path's statistics and give the results' numbers, fixed and sequential."""
    settings.RESULTS_SEQUENTIAL_TUNING = 150
    now = timezone.now()
    spec = AASpec(runs=1, users=80, days=2, seed=11)
    result = real_run(0, spec, random.Random(11), now)
    experiment = Experiment.objects.get(key="aa_test_00001")
    start = datetime.combine(experiment.started_at.date(), time.min, tzinfo=UTC)
    counts = variant_counts(experiment.key, population=None, window=(start, now))
    total = sum(len(arm) for arm in counts.values())
    assert total == 80
    compared = 0
    for metric in default_metrics():
        final = result.looks[metric.key][-1]
        lift, users = fast_lift(metric, counts["treatment"], counts["control"])
        look = look_of(lift, users, sequential_tuning())
        if final.p_fixed is None:
            assert look.p_fixed is None
            continue
        compared += 1
        assert look.p_fixed == pytest.approx(final.p_fixed, rel=1e-9, abs=1e-12)
        assert look.p_sequential == pytest.approx(final.p_sequential, rel=1e-9, abs=1e-12)
        assert look.fixed_ci == pytest.approx(final.fixed_ci, rel=1e-9)
        assert look.sequential_ci == pytest.approx(final.sequential_ci, rel=1e-9)
    assert compared == len(CATALOGUE_METRICS)


# --- the fast path -----------------------------------------------------------------------------


def test_vectorised_hashing_is_the_python_twin():
    rng = np.random.default_rng(3)
    raw = np.frombuffer(rng.bytes(16 * 2000), dtype=np.uint8).reshape(2000, 16)
    texts = uuid_texts(raw)
    ids = [bytes(row).decode() for row in texts]
    assert ids[0] == str(uuid.UUID(bytes=bytes(raw[0]), version=4))
    salt = "9f3a61c0e2b4d758"
    points = hash_points(salt, texts)
    assert points.tolist() == [hash_point(salt, user_id, 2) for user_id in ids]
    ranges = bucket_ranges(2, 1.0, [0.5, 0.5])
    assert ((points >= 0.5).astype(int) == [choose_variation(p, ranges) for p in points]).all()


def test_the_sequential_look_is_the_library_sequential_lift():
    rng = np.random.default_rng(8)
    a, b = rng.binomial(10, 0.3, 300), rng.binomial(10, 0.3, 280)
    impressions = (np.full(300, 10), np.full(280, 10))
    cases = [
        (ratio_lift, {"numerator": a, "denominator": impressions[0],
                      "control_numerator": b, "control_denominator": impressions[1]}),
        (mean_lift, {"values": a, "control_values": b}),
        (proportion_lift, {"converted": int((a > 2).sum()), "exposed": 300,
                           "control_converted": int((b > 2).sum()), "control_exposed": 280}),
    ]  # fmt: skip
    for function, arguments in cases:
        look = look_of(function(**arguments), 580, 500)
        sequential = function(**arguments, sequential=Sequential(500))
        assert look.p_sequential == pytest.approx(sequential.p_value, rel=1e-12)
        assert look.sequential_ci == pytest.approx(
            (sequential.abs_ci_low, sequential.abs_ci_high), rel=1e-12
        )


RUNS = 400


@pytest.fixture(scope="module")
def calibration(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        spec = AASpec(runs=RUNS, users=400, days=14, seed=15, fast=True)
        return summarise(spec, run_fast(spec))


@pytest.mark.django_db
def test_fast_path_calibration_with_a_look_per_day_for_14_days(calibration):
    check_shape(calibration, RUNS, 400, 14, 15, "fast")
    se = math.sqrt(0.05 * 0.95 / RUNS)
    for key, row in calibration["metrics"].items():
        rates = row["false_positive_rate"]
        assert rates["sequential"] <= 0.05 + 3 * se, (key, rates)
        assert rates["fixed"] >= 0.15, (key, rates)  # daily peeking at the fixed test
        assert row["coverage"] >= 0.95 - 3 * se, (key, row)
        assert row["sequential_coverage"] >= 0.95, (key, row)
        assert row["ks_p_value"] > 0.001, (key, row)
    assert calibration["srm_false_alarm_rate"] <= 0.001 + 3 * math.sqrt(0.001 * 0.999 / RUNS)
    # Exact, seeded numbers.
    like = calibration["metrics"]["like_rate"]
    assert (like["false_positive_rate"]["fixed"], like["false_positive_rate"]["sequential"]) == (
        EXPECTED_LIKE
    )


EXPECTED_LIKE = (0.2275, 0.0)


@pytest.mark.django_db
def test_fast_path_repeats_exactly_for_a_seed():
    first = aa_test("--runs", "20", "--users", "100", "--days", "5", "--seed", "9", "--fast")
    check_shape(first, 20, 100, 5, 9, "fast")
    again = aa_test("--runs", "20", "--users", "100", "--days", "5", "--seed", "9", "--fast")
    assert again == first
    assert aa_test("--runs", "20", "--users", "100", "--days", "5", "--fast") != first


@pytest.mark.django_db
def test_text_output_is_a_table(tmp_path):
    out = io.StringIO()
    call_command(
        "aa_test", "--runs", "5", "--users", "50", "--days", "2", "--fast",
        "--report-dir", str(tmp_path), stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    text = out.getvalue()
    assert text.startswith("A/A harness (fast path): 5 runs x 50 users x 2 days, seed 1")
    assert "| metric | FPR fixed (daily peeking) |" in text and "| users_with_like |" in text
    assert f"report bundle: {tmp_path / 'aa-fast-seed1-5x50x2'}" in text


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--runs", "0", "--users", "10", "--days", "2"], "--runs: must be from 1 to 200"),
        (["--runs", "201", "--users", "10", "--days", "2"], "--runs: must be from 1 to 200"),
        (["--runs", "2", "--users", "3", "--days", "2", "--fast"], "--users: must be from 4"),
        (["--runs", "2", "--users", "10", "--days", "61", "--fast"], "--days: must be from 1"),
        (["--runs", "2", "--users", "10", "--days", "31"], "--days: must be from 1 to 30"),
        (["--runs", "abc", "--users", "10", "--days", "2"], "--runs: must be a whole number"),
        (["--runs", "1\x00", "--users", "10", "--days", "2"], "--runs: must be a whole number"),
        (["--runs", "²", "--users", "10", "--days", "2"], "--runs: must be a whole number"),
        (["--runs", "-1", "--users", "10", "--days", "2"], "--runs: must be a whole number"),
        (["--runs", "9" * 30, "--users", "10", "--days", "2"], "--runs: must be a whole number"),
        (["--runs", "2", "--users", "10", "--days", "2", "--seed", "x"], "--seed: must be a"),
        (["--runs", "2", "--users", "10", "--days", "2", "--seed", str(2**63)], "--seed: must"),
    ],
)
def test_bad_flags_are_one_line_before_anything_runs(args, message):
    with pytest.raises(CommandError) as caught:
        call_command("aa_test", *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert scratch_databases() == []


@pytest.mark.django_db
def test_an_unwritable_report_dir_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CommandError) as caught:
        call_command(
            "aa_test", "--runs", "1", "--users", "10", "--days", "1", "--fast",
            "--report-dir", str(blocker / "sub"), stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip
    assert "cannot write the bundle" in str(caught.value) and "\n" not in str(caught.value)


def test_spec_takes_ints_and_their_text():
    assert aa_spec(runs="3", users=10, days="2", seed="0", fast=True) == AASpec(3, 10, 2, 0, True)


# --- larger runs (pytest -m slow) -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db
def test_fast_path_at_scale():
    runs = 2000
    summary = summarise(
        AASpec(runs, 1000, 14, 21, True), run_fast(AASpec(runs, 1000, 14, 21, True))
    )
    se = math.sqrt(0.05 * 0.95 / runs)
    for key, row in summary["metrics"].items():
        assert row["false_positive_rate"]["sequential"] <= 0.05 + 3 * se, key
        assert row["false_positive_rate"]["fixed"] >= 0.15, key
        assert abs(row["coverage"] - 0.95) <= 3 * se, key
        assert row["ks_p_value"] > 0.001, key
    assert summary["srm_false_alarm_rate"] <= 0.001 + 3 * math.sqrt(0.001 * 0.999 / runs)


@pytest.mark.slow
def test_real_path_at_scale(live):
    before = table_fingerprints()
    summary = aa_test("--runs", "10", "--users", "100", "--days", "5", "--seed", "2")
    assert table_fingerprints() == before
    check_shape(summary, 10, 100, 5, 2, "real")
