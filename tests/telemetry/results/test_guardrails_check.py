"""A customer's guardrail file judged by `guardrails check` (exit 0 / 1 / 2 for CI), by
`experiment_report --guardrails` and by experiment_results(guardrails=...) (issue 14,
section 4), on experiments whose drop is planted in the real database."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from recsys_experiments.lib.errors import InvalidInput
from recsys_experiments.lib.statistics import ratio_lift
from recsys_experiments.models import Experiment
from telemetry.results.analysis import experiment_results
from tests.telemetry.results.test_guardrails import CONTROL, IMPRESSIONS, plant

HARMFUL = [1, 2, 1] * 8  # like rate 0.133 against control's 0.5: a drop of 0.37
SIMILAR = [4, 6, 5] * 8  # like rate 0.5: no change


def write(tmp_path, text: str, name: str = "guardrails.yml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def check(*args) -> tuple[int, str, str]:
    """Run `guardrails check`; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("guardrails", "check", *args, stdout=out, stderr=err)
    except CommandError as error:
        err.write(str(error))
        return error.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


LIKE_DROP = "customer: acme\nguardrails:\n  - {metric: like_rate, max_drop: 0.05}\n"


def test_a_planted_drop_fails_the_check_with_exit_1(db, tmp_path):
    plant("gf_harmful", {"control": CONTROL, "treatment": HARMFUL})
    expected = ratio_lift(
        numerator=HARMFUL,
        denominator=[IMPRESSIONS] * len(HARMFUL),
        control_numerator=CONTROL,
        control_denominator=[IMPRESSIONS] * len(CONTROL),
    )

    code, out, err = check("--file", write(tmp_path, LIKE_DROP), "--experiment", "gf_harmful")

    assert code == 1
    line = (
        f"gf_harmful: like_rate (treatment) max_drop 0.05: value {expected.abs_lift:+.4f} "
        f"CI [{expected.abs_ci_low:+.4f}, {expected.abs_ci_high:+.4f}]: FAILED"
    )
    assert line in out.splitlines()
    assert "gf_harmful: FAILED" in out.splitlines()
    assert "guardrails check failed: gf_harmful" in err


def test_a_drop_within_the_limit_passes_with_exit_0(db, tmp_path):
    plant("gf_fine", {"control": CONTROL, "treatment": SIMILAR})

    code, out, _ = check("--file", write(tmp_path, LIKE_DROP), "--experiment", "gf_fine")

    assert code == 0
    assert "gf_fine: like_rate (treatment) max_drop 0.05: value +0.0000 CI [" in out
    assert out.splitlines()[-1] == "gf_fine: passed"


def test_by_default_every_active_experiment_is_checked_with_its_own_entries(db, tmp_path):
    plant("gf_explore", {"control": CONTROL, "treatment": HARMFUL})
    plant("gf_steady", {"control": CONTROL, "treatment": SIMILAR})
    draft = plant("gf_draft", {"control": CONTROL, "treatment": HARMFUL})
    Experiment.objects.filter(pk=draft.pk).update(status="draft")
    text = LIKE_DROP + "experiments:\n  gf_explore:\n    - {metric: like_rate, max_drop: 0.5}\n"

    code, out, _ = check("--file", write(tmp_path, text))

    assert code == 0  # gf_explore's own limit (0.5) replaces the file-wide 0.05
    assert "gf_explore: like_rate (treatment) max_drop 0.5: value -0.3667" in out
    assert "gf_steady: like_rate (treatment) max_drop 0.05:" in out
    assert "gf_draft" not in out

    code, out, _ = check("--file", write(tmp_path, LIKE_DROP))
    assert code == 1 and "gf_explore: FAILED" in out and "gf_steady: passed" in out


def test_not_enough_data_warns_by_default_and_fails_when_the_file_says_so(db, tmp_path):
    plant("gf_nodislikes", {"control": CONTROL, "treatment": SIMILAR})  # no dislikes at all
    text = "customer: acme\nguardrails:\n  - {metric: dislike_rate, max_rise: 0.05}\n"

    code, out, err = check("--file", write(tmp_path, text), "--experiment", "gf_nodislikes")
    assert code == 0
    assert "gf_nodislikes: dislike_rate (treatment) max_rise 0.05: value" in out
    assert ": not enough data (" in out
    assert "warning: dislike_rate (treatment) max_rise 0.05: not enough data" in err

    strict = text + "not_enough_data: fail\n"
    code, out, _ = check("--file", write(tmp_path, strict), "--experiment", "gf_nodislikes")
    assert code == 1 and "gf_nodislikes: FAILED" in out


def test_a_sample_ratio_mismatch_warns_or_fails_by_the_file(db, tmp_path):
    # 40 users against 8 at weights 0.5/0.5: chi-squared p < 0.001.
    plant("gf_srm", {"control": [5] * 40, "treatment": [5] * 8})
    text = "customer: acme\nguardrails:\n  - {metric: like_rate, max_drop: 0.05}\n"

    code, out, err = check("--file", write(tmp_path, text), "--experiment", "gf_srm")
    assert code == 0
    assert "gf_srm: sample ratio mismatch flagged (p = " in out and "): warning" in out
    assert "warning: sample ratio mismatch flagged" in err

    code, out, _ = check(
        "--file", write(tmp_path, text + "srm: fail\n"), "--experiment", "gf_srm"
    )  # fmt: skip
    assert code == 1 and "): FAILED" in out and "gf_srm: FAILED" in out


def test_json_output_shape(db, tmp_path):
    plant("gf_json", {"control": CONTROL, "treatment": HARMFUL})
    path = write(tmp_path, LIKE_DROP + "srm: fail\n")

    code, out, _ = check("--file", path, "--experiment", "gf_json", "--json")

    assert code == 1
    report = json.loads(out)
    assert report | {"checks": None} == {
        "file": path,
        "customer": "acme",
        "srm": "fail",
        "not_enough_data": "pass",
        "passed": False,
        "checks": None,
    }
    [item] = report["checks"]
    assert set(item) == {
        "experiment", "bundle", "phase", "passed", "failures", "warnings", "srm", "guardrails",
    }  # fmt: skip
    assert item["experiment"] == "gf_json" and item["bundle"] is None and item["phase"] == 1
    assert item["passed"] is False and item["warnings"] == []
    assert item["failures"] == ["like_rate (treatment) max_drop 0.05"]
    assert item["srm"]["flagged"] is False
    [guardrail] = item["guardrails"]
    assert guardrail["source"] == "file" and guardrail["status"] == "failed"
    assert guardrail["value"] == pytest.approx(-11 / 30)


def test_a_report_bundle_is_judged_from_its_results_json(db, tmp_path):
    experiment = plant("gf_bundle", {"control": CONTROL, "treatment": HARMFUL})
    bundle = tmp_path / "run-1"
    bundle.mkdir()
    stored = experiment_results(experiment)
    (bundle / "results.json").write_text(json.dumps({"results": stored}, default=str))
    path = write(tmp_path, LIKE_DROP)
    _, live, _ = check("--file", path, "--experiment", "gf_bundle", "--json")
    # The experiment is gone from the database: only the bundle speaks for it.
    experiment.delete()

    code, out, _ = check("--file", path, "--bundle", str(bundle), "--json")

    assert code == 1
    [item] = json.loads(out)["checks"]
    [live_item] = json.loads(live)["checks"]
    assert item["bundle"] == str(bundle) and item["experiment"] == "gf_bundle"
    assert item["guardrails"] == live_item["guardrails"]  # the same numbers, the same verdict

    code, out, _ = check("--file", path, "--bundle", str(bundle))
    assert code == 1
    assert f"gf_bundle [bundle {bundle}]: like_rate (treatment) max_drop 0.05: value" in out


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "cannot read"),
        ("{not json", "results.json is not valid JSON"),
        ('{"truth": []}', 'results.json has no "results" object'),
        ('{"results": {"experiment": "x"}}', '"results.control" is missing or malformed'),
        ("[" * 100_000 + "]" * 100_000, "results.json is not valid JSON"),
        ('{"results": "\\u0000"}', 'results.json has no "results" object'),
    ],
)
def test_a_bad_bundle_is_exit_2_with_one_line(db, tmp_path, content, reason):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    if content is not None:
        (bundle / "results.json").write_text(content)

    code, out, err = check("--file", write(tmp_path, LIKE_DROP), "--bundle", str(bundle))

    assert code == 2 and out == ""
    assert err.startswith(f"--bundle {bundle}: ") and reason in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--experiment", "gf_nosuch"], 'no experiment with key "gf_nosuch"'),
        (["--experiment", "gf\x00key"], 'no experiment with key "gf\\x00key"'),
        (["--experiment", "gf_args", "--phase", "0"], "--phase must be a phase number from 1"),
        (["--experiment", "gf_args", "--phase", "7"], "phase: no phase 7 (phases: 1)"),
    ],
)
def test_bad_arguments_are_exit_2(db, tmp_path, args, message):
    plant("gf_args", {"control": CONTROL, "treatment": HARMFUL})

    code, out, err = check("--file", write(tmp_path, LIKE_DROP), *args)

    assert code == 2 and out == "" and err == message


def test_a_bad_file_is_exit_2_naming_the_path(db, tmp_path):
    path = write(tmp_path, "customer: acme\nguardrails:\n  - {metric: like_rate, max_drop: -1}\n")

    code, out, err = check("--file", path)

    assert code == 2 and out == ""
    assert err == (
        f"--file {path}: guardrails[0].max_drop: must be a number from 0 "
        "(absolute, in the metric's units)"
    )


def test_experiment_results_judges_the_file_beside_the_experiments_own(db):
    experiment = plant("gf_both", {"control": CONTROL, "treatment": HARMFUL})
    experiment.guardrails = [{"metric": "like_rate", "max_drop": 0.5}]  # passes
    experiment.save()

    alone = experiment_results(experiment)
    both = experiment_results(
        experiment,
        guardrails=[
            {"metric": "like_rate", "max_drop": 0.05},
            {"metric": "likes_per_user", "max_drop": 10},  # not a listed metric: computed
        ],
    )

    assert [(g["source"], g["status"]) for g in alone["guardrails"]] == [("experiment", "passed")]
    assert alone["guardrails_passed"] is True
    assert [(g["source"], g["metric"], g["status"]) for g in both["guardrails"]] == [
        ("experiment", "like_rate", "passed"),
        ("file", "like_rate", "failed"),
        ("file", "likes_per_user", "passed"),
    ]
    assert both["guardrails"][2]["value"] == pytest.approx(4 / 3 - 5)
    assert both["guardrails_passed"] is False
    with pytest.raises(InvalidInput, match=r"guardrails\[0\]\.metric: must be one of"):
        experiment_results(experiment, guardrails=[{"metric": "love", "max_drop": 1}])


def test_experiment_report_applies_the_guardrail_file(db, tmp_path):
    plant("gf_report", {"control": CONTROL, "treatment": HARMFUL})  # no guardrails of its own
    call_command("experiment_report", "gf_report", stdout=io.StringIO())  # exit 0

    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command(
            "experiment_report", "gf_report", "--guardrails", write(tmp_path, LIKE_DROP),
            stdout=out, stderr=io.StringIO(),
        )  # fmt: skip
    assert raised.value.returncode == 1
    assert "guardrail failed: like_rate" in str(raised.value)
    assert "guardrail like_rate (treatment) [file]: max_drop 0.05: value -0.3667" in out.getvalue()

    relaxed = write(tmp_path, "customer: acme\nguardrails: [{metric: like_rate, max_drop: 0.5}]")
    out = io.StringIO()
    call_command("experiment_report", "gf_report", "--guardrails", relaxed, "--json", stdout=out)
    [guardrail] = json.loads(out.getvalue())["guardrails"]
    assert guardrail["source"] == "file" and guardrail["status"] == "passed"

    strict = write(
        tmp_path,
        "customer: acme\nguardrails: [{metric: dislike_rate, max_rise: 0.1}]\n"
        "not_enough_data: fail\n",
    )
    with pytest.raises(CommandError) as raised:
        call_command(
            "experiment_report", "gf_report", "--guardrails", strict,
            stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip
    assert raised.value.returncode == 1
    assert "dislike_rate (treatment) max_rise 0.1: not enough data" in str(raised.value)

    with pytest.raises(CommandError) as raised:
        call_command(
            "experiment_report", "gf_report", "--guardrails", str(tmp_path / "missing.yml"),
            stdout=io.StringIO(),
        )  # fmt: skip
    assert raised.value.returncode == 2 and "--guardrails " in str(raised.value)


def test_the_command_runs_as_from_the_command_line_with_system_checks(db, tmp_path):
    # manage.py runs Django's system checks first (call_command does not, by default).
    out = io.StringIO()
    call_command(
        "guardrails", "check", "--file", write(tmp_path, LIKE_DROP), skip_checks=False, stdout=out
    )

    assert out.getvalue().splitlines()[-1] == "no active experiments: nothing to check"
