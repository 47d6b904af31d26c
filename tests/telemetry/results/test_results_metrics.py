"""The catalogue metrics in the results (issue 13, sections 2-4): computed on the phase's clean
population, the same numbers in the metrics API, `experiment_report` and the admin results
page, with the p-values adjusted across metrics x variants."""

import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from statsmodels.stats.multitest import multipletests

from recsys_experiments.lib.statistics import ratio_lift
from telemetry.models import ExperimentMetric, Metric
from telemetry.results.analysis import experiment_results
from tests.factories.catalog import MediaItemFactory
from tests.factories.experiments import ActiveExperimentFactory
from tests.factories.users import UserFactory
from tests.helpers import api_error_fields
from tests.telemetry.results.test_phases_and_window import assign, days_ago, like, phase, serve

# Per user: (variant, impressions, likes). A forced user with many likes must not count.
USERS = [
    ("control", 4, 1),
    ("control", 5, 2),
    ("control", 3, 0),
    ("control", 6, 1),
    ("treatment", 4, 2),
    ("treatment", 5, 3),
    ("treatment", 3, 1),
    ("treatment", 6, 3),
]


@pytest.fixture
def planted(db):
    item = MediaItemFactory()
    experiment = ActiveExperimentFactory(key="metrics_test", started_at=days_ago(6))
    phase(experiment, 1, days_ago(6))
    for variant, impressions, likes in USERS:
        user = UserFactory()
        assign(experiment, user, variant, at=days_ago(5))
        requests = [
            serve(user, item, "metrics_test", variant, days_ago(4)) for _ in range(impressions)
        ]
        for request in requests[:likes]:
            like(user, request, item, days_ago(4))
    forced = UserFactory()
    assign(experiment, forced, "treatment", at=days_ago(5), mode="manual")
    for _ in range(9):
        like(
            forced, serve(forced, item, "metrics_test", "treatment", days_ago(4)), item, days_ago(4)
        )
    ExperimentMetric.objects.create(
        experiment=experiment, metric=Metric.objects.get(key="like_rate"), is_primary=True
    )
    ExperimentMetric.objects.create(
        experiment=experiment, metric=Metric.objects.get(key="likes_per_user")
    )
    return experiment


def test_the_ratio_metric_is_computed_on_the_clean_population(planted):
    planted.sequential_testing = False
    planted.save()
    results = experiment_results(planted)

    assert results["primary_metric"] == "like_rate" and results["excluded"]["manual"] == 1
    [row] = [r for r in results["metrics"] if r["metric"] == "like_rate"]
    expected = ratio_lift(
        numerator=[likes for v, _, likes in USERS if v == "treatment"],
        denominator=[n for v, n, _ in USERS if v == "treatment"],
        control_numerator=[likes for v, _, likes in USERS if v == "control"],
        control_denominator=[n for v, n, _ in USERS if v == "control"],
    )
    assert row["value"] == pytest.approx(9 / 18) and row["control_value"] == pytest.approx(4 / 18)
    assert row["p_value"] == pytest.approx(expected.p_value, abs=1e-12)
    assert row["kind"] == "ratio" and row["sequential"] is False
    raw = [r["p_value"] for r in results["metrics"]]
    assert [r["p_adjusted"] for r in results["metrics"]] == pytest.approx(
        list(multipletests(raw, method="holm")[1]), abs=1e-12
    )


def test_api_report_and_page_show_the_same_metric_rows(planted, api_client, staff_user, client):
    api_client.force_authenticate(staff_user)
    url = "/api/v1/admin/experiments/metrics_test/metrics"

    holm = api_client.get(url).json()
    bh = api_client.get(url, {"correction": "bh"}).json()
    bad = api_client.get(url, {"correction": "bonferroni"})

    assert holm["metrics"] == json.loads(json.dumps(experiment_results(planted)["metrics"]))
    raw = [r["p_value"] for r in bh["metrics"]]
    assert [r["p_adjusted"] for r in bh["metrics"]] == pytest.approx(
        list(multipletests(raw, method="fdr_bh")[1]), abs=1e-12
    )
    assert bad.status_code == 400 and "correction" in api_error_fields(bad)

    out = io.StringIO()
    call_command("experiment_report", "metrics_test", stdout=out)
    report = out.getvalue()
    assert "metrics (p adjusted by holm" in report and "* like_rate" in report
    [like_row] = [r for r in holm["metrics"] if r["metric"] == "like_rate"]
    assert f"{like_row['p_value']:.4f}" in report

    client.force_login(staff_user)
    page = client.get(reverse("admin:experiment_results", args=[planted.pk])).content.decode()
    assert 'id="recsys-metrics"' in page and "ratio: like / impression" in page
    assert "Relative lift vs control, 95% always-valid CI" in page  # the forest plot
