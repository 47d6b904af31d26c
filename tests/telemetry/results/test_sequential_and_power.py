"""Sequential testing per experiment and the power estimate, through the results, the API,
experiment_report, the admin results page, the experiment's own edges (API, form, command)
and the admin power calculator."""

import io
import json
import math
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from statsmodels.stats.multitest import multipletests

from recsys_experiments.lib.power import mde_multiplier, proportion_users_per_variant
from recsys_experiments.lib.statistics import Sequential, ratio_lift
from recsys_experiments.models import Experiment, ExperimentPhase
from telemetry.models import ExperimentMetric, Metric
from telemetry.results.analysis import experiment_results
from tests.factories.experiments import ActiveExperimentFactory
from tests.helpers import admin_page_url, api_error_fields
from tests.recsys_experiments.admin.test_admin_pages import variant_rows
from tests.telemetry.results.test_guardrails import CONTROL, IMPRESSIONS, plant

TREATMENT = [5, 6, 7] * 8  # 24 users, like rate 0.6 against control's 0.5


@pytest.fixture
def planted(db):
    """48 users (24 a side), 10 impressions each, first seen 4 days into a 6-day-old phase;
    like_rate is the primary metric, likes_per_user the other one. Sequential (the default)."""
    experiment = plant("seq_test", {"control": CONTROL, "treatment": TREATMENT})
    experiment.sequential_testing = True
    experiment.save()
    ExperimentMetric.objects.create(
        experiment=experiment, metric=Metric.objects.get(key="like_rate"), is_primary=True
    )
    ExperimentMetric.objects.create(
        experiment=experiment, metric=Metric.objects.get(key="likes_per_user")
    )
    return experiment


def like_rate_lift(sequential):
    return ratio_lift(
        numerator=TREATMENT,
        denominator=[IMPRESSIONS] * len(TREATMENT),
        control_numerator=CONTROL,
        control_denominator=[IMPRESSIONS] * len(CONTROL),
        sequential=sequential,
    )


def test_new_experiments_use_sequential_testing_and_rows_say_so(planted, settings):
    settings.RESULTS_SEQUENTIAL_TUNING = 2000
    assert ActiveExperimentFactory().sequential_testing is True

    results = experiment_results(planted)

    assert results["inference"] == "sequential" and results["sequential_tuning"] == 2000
    assert all(row["sequential"] is True for row in results["metrics"])
    [row] = [r for r in results["metrics"] if r["metric"] == "like_rate"]
    expected = like_rate_lift(Sequential(2000))
    assert (row["abs_ci_low"], row["abs_ci_high"], row["p_value"]) == pytest.approx(
        (expected.abs_ci_low, expected.abs_ci_high, expected.p_value), rel=1e-12
    )
    assert (row["rel_ci_low"], row["rel_ci_high"]) == pytest.approx(
        (expected.rel_ci_low, expected.rel_ci_high), rel=1e-12
    )
    # Holm still applies, to the always-valid p-values.
    raw = [r["p_value"] for r in results["metrics"]]
    assert [r["p_adjusted"] for r in results["metrics"]] == pytest.approx(
        list(multipletests(raw, method="holm")[1]), abs=1e-12
    )
    # The fixed-horizon interval is narrower and its p-value smaller on the same data.
    fixed = like_rate_lift(None)
    assert row["abs_ci_low"] < fixed.abs_ci_low and row["p_value"] > fixed.p_value


def test_fixed_horizon_experiments_get_the_fixed_rows(planted):
    planted.sequential_testing = False
    planted.save()

    results = experiment_results(planted)

    assert results["inference"] == "fixed" and results["sequential_tuning"] is None
    [row] = [r for r in results["metrics"] if r["metric"] == "like_rate"]
    expected = like_rate_lift(None)
    assert row["sequential"] is False
    assert (row["abs_ci_low"], row["p_value"]) == pytest.approx(
        (expected.abs_ci_low, expected.p_value), rel=1e-12
    )


def test_power_uses_the_observed_arrivals_and_variance(planted):
    start = ExperimentPhase.objects.get(experiment=planted).started_at
    now = start + timedelta(days=6)  # 48 clean users in 6 days: 8 a day

    results = experiment_results(planted, now=now, mde=0.03)

    power = results["power"]
    assert power["metric"] == "like_rate" and power["method"].startswith("fixed-horizon")
    assert (power["exposed_users"], power["elapsed_days"]) == (48, 6)
    assert power["daily_users"] == pytest.approx(8)
    [comparison] = power["comparisons"]
    se = like_rate_lift(None).std_error
    m = mde_multiplier()
    assert comparison["variant"] == "treatment"
    assert comparison["mde_abs"] == pytest.approx(m * se, rel=1e-12)
    assert comparison["mde_rel"] == pytest.approx(m * se / 0.5, rel=1e-12)
    assert comparison["target_mde_abs"] == pytest.approx(0.015)
    needed = 48 * (m * se / 0.015) ** 2
    assert comparison["users_needed"] == math.ceil(needed)
    assert comparison["days_needed"] == pytest.approx(needed / 8, rel=1e-12)
    assert comparison["days_remaining"] == pytest.approx(needed / 8 - 6, rel=1e-12)
    # The default target comes from settings (5% relative).
    assert experiment_results(planted, now=now)["power"]["target_mde_rel"] == 0.05


def test_power_without_a_primary_metric_says_so(planted):
    ExperimentMetric.objects.filter(experiment=planted).update(is_primary=False)

    power = experiment_results(planted)["power"]

    assert power["metric"] is None and power["reason"] == "no primary metric"
    assert power["comparisons"] == []


def test_api_report_and_page_show_the_mode_and_the_power(planted, api_client, staff_user, client):
    api_client.force_authenticate(staff_user)
    url = "/api/v1/admin/experiments/seq_test/metrics"

    body = api_client.get(url, {"mde": "0.03"}).json()
    assert body["inference"] == "sequential" and body["power"]["target_mde_rel"] == 0.03
    assert all(row["sequential"] is True for row in body["metrics"])

    out = io.StringIO()
    call_command("experiment_report", "seq_test", "--mde", "0.03", stdout=out)
    report = out.getvalue()
    assert "inference: sequential (always-valid" in report
    assert "power (fixed-horizon two-sided z-test, 80% power, alpha 0.05): like_rate" in report
    assert "target MDE 3.00% relative" in report and "treatment: MDE now" in report

    client.force_login(staff_user)
    page = client.get(admin_page_url("experiment_results", planted) + "?mde=0.03")
    text = page.content.decode()
    assert 'id="recsys-inference"' in text and "Inference: sequential." in text
    assert 'id="recsys-power-table"' in text and "95% always-valid CI" in text
    planted.sequential_testing = False
    planted.save()
    text = client.get(admin_page_url("experiment_results", planted)).content.decode()
    assert "Inference: fixed-horizon." in text
    out = io.StringIO()
    call_command("experiment_report", "seq_test", stdout=out)
    assert "inference: fixed-horizon" in out.getvalue()


@pytest.mark.parametrize("bad", ["abc", "0", "-0.1", "nan", "inf", "1e999", "0.05\x00", "11"])
def test_a_bad_mde_is_a_400_a_one_line_error_and_a_page_message(
    planted, api_client, staff_user, client, bad
):
    api_client.force_authenticate(staff_user)
    response = api_client.get("/api/v1/admin/experiments/seq_test/metrics", {"mde": bad})
    assert response.status_code == 400 and set(api_error_fields(response)) == {"mde"}

    with pytest.raises(CommandError) as raised:
        call_command("experiment_report", "seq_test", "--mde", bad, stdout=io.StringIO())
    assert "--mde" in str(raised.value) and "\n" not in str(raised.value)

    client.force_login(staff_user)
    page = client.get(admin_page_url("experiment_results", planted), {"mde": bad})
    text = page.content.decode().lower()
    assert page.status_code == 200 and "mde: must be a relative effect" in text


# --- the experiment's own edges ---------------------------------------------------------------


def test_the_admin_api_reads_and_writes_sequential_testing(api_client, staff_user, db):
    api_client.force_authenticate(staff_user)
    base = "/api/v1/admin/experiments"
    variants = [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}]

    default = api_client.post(base, {"key": "seq_default", "variants": variants}, format="json")
    fixed = api_client.post(
        base,
        {"key": "seq_fixed", "variants": variants, "sequential_testing": False},
        format="json",
    )
    bad = api_client.post(
        base, {"key": "seq_bad", "variants": variants, "sequential_testing": "yes"}, format="json"
    )

    assert default.json()["sequential_testing"] is True
    assert fixed.json()["sequential_testing"] is False
    assert Experiment.objects.get(key="seq_fixed").sequential_testing is False
    assert bad.status_code == 400 and api_error_fields(bad) == {
        "sequential_testing": ["must be true or false"]
    }
    api_client.post(f"{base}/seq_fixed/activate")
    patched = api_client.patch(f"{base}/seq_fixed", {"sequential_testing": True}, format="json")
    assert patched.status_code == 200 and patched.json()["sequential_testing"] is True
    # A change of inference is no change of who is enrolled: no new phase.
    assert ExperimentPhase.objects.filter(experiment__key="seq_fixed").count() == 1


def test_the_command_creates_and_shows_sequential_testing(db):
    out = io.StringIO()
    call_command(
        "experiments", "create", "--key", "seq_cmd", "--variant", "control=0.5",
        "--variant", "treatment=0.5", "--no-sequential-testing", "--json", stdout=out,
    )  # fmt: skip
    assert json.loads(out.getvalue())["sequential_testing"] is False
    shown = io.StringIO()
    call_command("experiments", "show", "seq_cmd", stdout=shown)
    assert "sequential_testing: false" in shown.getvalue()
    call_command(
        "experiments", "create", "--key", "seq_cmd2", "--variant", "control=0.5",
        "--variant", "treatment=0.5", stdout=io.StringIO(),
    )  # fmt: skip
    assert Experiment.objects.get(key="seq_cmd2").sequential_testing is True


def test_the_admin_form_has_the_sequential_testing_box(client, staff_user, db):
    client.force_login(staff_user)
    add = "/admin/recsys_experiments/experiment/add/"
    assert 'name="sequential_testing"' in client.get(add).content.decode()
    data = {
        "key": "seq_form",
        "description": "",
        **variant_rows([{"name": "control", "weight": 1}, {"name": "treatment", "weight": 1}]),
        "traffic": "1",
    }
    client.post(add, {**data, "sequential_testing": "on"})
    client.post(add, {**data, "key": "seq_form_fixed"})  # an unticked box is not sent
    assert Experiment.objects.get(key="seq_form").sequential_testing is True
    assert Experiment.objects.get(key="seq_form_fixed").sequential_testing is False


# --- the calculator page ----------------------------------------------------------------------

CALCULATOR = "/admin/recsys/power-calculator/"


def test_the_calculator_page_gives_users_and_days(client, staff_user):
    client.force_login(staff_user)
    empty = client.get(CALCULATOR).content.decode()
    page = client.get(
        CALCULATOR,
        {"baseline": "0.1", "mde": "0.05", "mde_type": "relative", "variants": "3",
         "daily_users": "2000"},
    ).content.decode()  # fmt: skip
    index = client.get("/admin/").content.decode()

    per_variant = math.ceil(proportion_users_per_variant(0.1, 0.005))
    assert 'id="recsys-calculator"' in empty and "recsys-calculator-result" not in empty
    assert f'id="recsys-users-per-variant">{per_variant}<' in page
    assert f'id="recsys-days">{math.ceil(3 * per_variant / 2000)}<' in page
    assert "Power calculator" in index and CALCULATOR in index


def test_the_calculator_page_shows_each_error_beside_its_field(client, staff_user):
    client.force_login(staff_user)
    response = client.get(
        CALCULATOR,
        {"baseline": "0.1\x00", "mde": "<script>x</script>", "mde_type": "relative",
         "variants": "²", "daily_users": "1" * 5000},
    )  # fmt: skip
    page = response.content.decode()
    assert response.status_code == 200 and "recsys-calculator-result" not in page
    for field in ("baseline", "mde", "variants", "daily_users"):
        assert f'id="error-{field}"' in page
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page


def test_the_calculator_is_for_staff_only(client, db):
    from tests.factories.users import UserFactory

    client.force_login(UserFactory(is_staff=False))
    response = client.get(CALCULATOR)
    assert response.status_code == 302 and "/login/" in response["Location"]
