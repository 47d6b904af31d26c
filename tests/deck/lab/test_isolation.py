"""Simulations never touch live data: they run in scratch databases, reading from the live
one only the experiments' definitions. Also report bundles and reproduction from them.

The live database here holds demo data (tagged history of two active experiments, one of
them in its second phase, with a linked primary metric and a guardrail)."""

import io
import itertools
import json
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from deck.lab.demo import seed_demo
from deck.lab.scratch import SCRATCH_PREFIX, scratch_drop
from recsys_experiments.models import Experiment
from recsys_experiments.services.experiments import experiment_rotate_salt
from telemetry.models import ExperimentMetric, Metric

SAMPLE_FIXTURE = Path(__file__).parents[3] / "docs" / "fixtures" / "media_catalog.yaml"
# The power estimate's arrivals per day follow the window, which ends now.
WALL_CLOCK = {"window", "phase", "phases", "power"}


@pytest.fixture
def live(db, settings, monkeypatch):
    # Fixed salts: the planted effects are recovered from a few hundred users, and which of
    # them land in which variant must not change from run to run.
    salts = (f"5eed{n:012x}" for n in itertools.count(1))
    for module in (
        "recsys_experiments.services.experiments",
        "recsys_experiments.lib.experiment_rules",
    ):
        monkeypatch.setattr(f"{module}.generate_salt", lambda: next(salts))
    # A few hundred simulated users: the always-valid intervals tuned for that sample (n*),
    # as docs/recsys-experiments.md advises, not for the default 5,000.
    settings.RESULTS_SEQUENTIAL_TUNING = 240
    seed_demo(items=80, users=12, days=2, seed=7)
    blend = Experiment.objects.get(key="swipe_blend_test")
    ExperimentMetric.objects.create(
        experiment=blend, metric=Metric.objects.get(key="like_rate"), is_primary=True
    )
    Experiment.objects.filter(pk=blend.pk).update(
        guardrails=[{"metric": "dislike_rate", "max_rise": 0.5}]
    )
    cap = Experiment.objects.get(key="diversity_cap_v1")
    experiment_rotate_salt(experiment=cap, confirm=True, actor=None, source="command")  # phase 2


def table_fingerprints() -> dict[str, tuple[int, str]]:
    """Per table of the live database: row count and md5 of its rows in order."""
    with connection.cursor() as cursor:
        cursor.execute("select tablename from pg_tables where schemaname = 'public' order by 1")
        tables = [row[0] for row in cursor.fetchall()]
        found = {}
        for table in tables:
            cursor.execute(
                f"select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), '')) "
                f"from {connection.ops.quote_name(table)} as t"
            )
            found[table] = cursor.fetchone()
    return found


def scratch_databases() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "select datname from pg_database where starts_with(datname, %s)", [SCRATCH_PREFIX]
        )
        return [row[0] for row in cursor.fetchall()]


def simulate(*args) -> tuple[dict, int]:
    """The run's JSON and the exit code (1 when a guardrail fails)."""
    out = io.StringIO()
    try:
        call_command("simulate", *args, "--json", stdout=out, stderr=io.StringIO())
        code = 0
    except CommandError as error:
        assert out.getvalue(), error  # a failed guardrail still printed the run
        code = error.returncode
    return json.loads(out.getvalue()), code


def like_row(run) -> dict:
    [row] = [row for row in run["truth"] if row["outcome_type"] == "like"]
    return row


def timeless(results: dict) -> dict:
    return {k: v for k, v in results.items() if k not in WALL_CLOCK}


def test_two_simulations_leave_the_live_database_identical_and_recover_their_effects(live):
    before = table_fingerprints()
    assert before["rec_impressions"][0] > 0 and before["rec_outcomes"][0] > 0

    blend, _ = simulate(
        "--experiment", "swipe_blend_test", "--users", "240", "--effect", "like=+0.12",
        "--seed", "3", "--with-live-experiments",
    )  # fmt: skip
    cap, _ = simulate(
        "--experiment", "diversity_cap_v1", "--users", "240", "--effect", "like=-0.10",
        "--seed", "3", "--with-live-experiments",
    )  # fmt: skip

    assert table_fingerprints() == before
    assert scratch_databases() == []
    for run, truth in ((blend, 0.12), (cap, -0.10)):
        like = like_row(run)
        assert like["true_lift"] == truth
        assert like["covered"] is True and like["significant"] is True, like
    # Each run copied the other live experiment in, and the live definitions came along:
    # the other variant names, the metric link and guardrail, the second phase and its salt.
    assert [other["key"] for other in blend["others"]] == ["diversity_cap_v1"]
    assert [other["key"] for other in cap["others"]] == ["swipe_blend_test"]
    assert {m["variant"] for m in blend["results"]["metrics"]} == {"cf_heavy"}
    assert blend["results"]["primary_metric"] == "like_rate"
    assert [g["metric"] for g in blend["results"]["guardrails"]] == ["dislike_rate"]
    live_cap = Experiment.objects.get(key="diversity_cap_v1")
    assert cap["experiment"]["salt"] == live_cap.salt
    assert cap["experiment"]["phase"]["number"] == 2
    assert cap["results"]["phase"]["number"] == 2


def test_a_run_reproduces_from_its_bundle_alone(live, tmp_path):
    run, _ = simulate(
        "--experiment", "swipe_blend_test", "--users", "60", "--effect", "like=+0.1",
        "--seed", "5", "--with-live-experiments", "--fixture", str(SAMPLE_FIXTURE),
        "--report-dir", str(tmp_path),
    )  # fmt: skip
    bundle = tmp_path / run["run_id"]
    assert {path.name for path in bundle.iterdir()} == {
        "arguments.json", "experiment.json", "experiments.json", "profile.json", "code.json",
        "results.json", "summary.md", "manifest.json", "fixture.yaml",
    }  # fmt: skip
    arguments = json.loads((bundle / "arguments.json").read_text())
    assert arguments["seed"] == 5 and arguments["with_live_experiments"] is True
    assert arguments["profile"] is None and arguments["fixture"] == str(SAMPLE_FIXTURE)
    assert (bundle / "fixture.yaml").read_bytes() == SAMPLE_FIXTURE.read_bytes()
    code = json.loads((bundle / "code.json").read_text())
    assert code["package_version"] and "telemetry" in code["migrations"]
    assert "## Provenance" in (bundle / "summary.md").read_text()
    # The live database changes; the bundle alone decides the reproduction.
    Experiment.objects.filter(key="swipe_blend_test").update(salt="changed", traffic=0.1)
    Experiment.objects.filter(key="diversity_cap_v1").delete()

    again, _ = simulate("--from-bundle", str(bundle), "--report-dir", str(tmp_path / "again"))

    first = json.loads((bundle / "results.json").read_text())
    second = json.loads((tmp_path / "again" / run["run_id"] / "results.json").read_text())
    assert timeless(second["results"]) == timeless(first["results"])
    assert second["truth"] == first["truth"]
    assert again["arguments"] == run["arguments"]


def test_keep_leaves_the_scratch_database(live):
    err = io.StringIO()
    call_command(
        "simulate", "--experiment", "kept_sim", "--users", "4", "--keep",
        stdout=io.StringIO(), stderr=err,
    )  # fmt: skip
    [kept] = scratch_databases()
    try:
        assert f"scratch database kept: {kept}" in err.getvalue()
    finally:
        scratch_drop(kept)
    assert scratch_databases() == []


@pytest.fixture
def bundle(live, tmp_path) -> Path:
    run, _ = simulate(
        "--experiment", "bundle_sim", "--users", "4", "--report-dir", str(tmp_path / "b")
    )
    return tmp_path / "b" / run["run_id"]


def rewrite(bundle: Path, name: str, content: str) -> None:
    """Change a bundle file and its manifest entry consistently."""
    import hashlib

    (bundle / name).write_text(content)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"][name] = hashlib.sha256(content.encode()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: shutil.rmtree(b), "no such bundle directory"),
        (
            lambda b: (b / "results.json").write_text("{}"),
            "results.json of .*: does not match its sha256",
        ),
        (
            lambda b: (b / "manifest.json").write_text("[1"),
            "manifest.json of .*: not a bundle manifest",
        ),
        (
            lambda b: (b / "experiment.json").unlink(),
            "experiment.json of .*: missing or unreadable",
        ),
        (
            lambda b: rewrite(b, "arguments.json", "{not json"),
            "arguments.json of .*: not valid JSON",
        ),
        (
            lambda b: rewrite(b, "arguments.json", json.dumps({"users": "many"})),
            "arguments.json.segments",
        ),
        (
            lambda b: rewrite(b, "experiment.json", json.dumps({"key": "x\x00y"})),
            "key",
        ),
        (lambda b: rewrite(b, "experiments.json", json.dumps({"a": 1})), "experiments.json"),
    ],
)
def test_a_damaged_bundle_is_one_readable_line(bundle, damage, message):
    damage(bundle)
    before = table_fingerprints()

    with pytest.raises(CommandError, match=message) as raised:
        call_command(
            "simulate", "--from-bundle", str(bundle), stdout=io.StringIO(), stderr=io.StringIO()
        )

    assert "\n" not in str(raised.value) and raised.value.returncode != 0
    assert table_fingerprints() == before
    assert scratch_databases() == []


def test_a_bundle_path_with_a_nul_byte_is_refused(live):
    with pytest.raises(CommandError, match="no such bundle directory"):
        call_command("simulate", "--from-bundle", "x\x00y", stdout=io.StringIO())


def test_an_ended_live_experiment_is_refused_before_any_database_is_made(live):
    Experiment.objects.filter(key="swipe_blend_test").update(status="ended")
    with pytest.raises(CommandError, match="has ended"):
        call_command(
            "simulate", "--experiment", "swipe_blend_test", "--users", "4",
            stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip
    assert scratch_databases() == []


def test_experiment_report_writes_a_bundle(live, tmp_path):
    out = io.StringIO()
    call_command(
        "experiment_report", "diversity_cap_v1", "--report-dir", str(tmp_path), "--json",
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip

    [bundle] = list(tmp_path.iterdir())
    assert bundle.name.startswith("diversity_cap_v1-")
    assert {path.name for path in bundle.iterdir()} == {
        "arguments.json", "experiment.json", "ranking.json", "code.json", "results.json",
        "report.txt", "manifest.json",
    }  # fmt: skip
    results = json.loads((bundle / "results.json").read_text())["results"]
    assert results == json.loads(out.getvalue())
    assert json.loads((bundle / "ranking.json").read_text()) == results["ranking"]
    experiment = json.loads((bundle / "experiment.json").read_text())
    assert experiment["phase"]["number"] == 2 and len(experiment["phases"]) == 2
    assert "diversity_cap_v1" in (bundle / "report.txt").read_text()


def test_experiment_report_of_a_missing_key_is_one_line(db, tmp_path):
    with pytest.raises(CommandError, match="no_such_key") as raised:
        call_command(
            "experiment_report", "no_such_key", "--report-dir", str(tmp_path),
            stdout=io.StringIO(),
        )  # fmt: skip
    assert "\n" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []
