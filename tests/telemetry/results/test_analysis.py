"""Results definitions on a hand-built dataset, and the three surfaces: the admin API, the
experiment_report command and the admin results page."""

import io
import json
import uuid

import pytest
from django.core.management import call_command
from django.db import connection

from telemetry.results.analysis import experiment_results
from tests.factories.catalog import MediaItemFactory
from tests.factories.experiments import ActiveExperimentFactory
from tests.factories.users import UserFactory
from tests.helpers import api_error_fields


def serve(user, item, experiments, request=None):
    request = request or uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into rec_impressions (user_id, rec_request_id, media_item_id, position, "
            "source, request_context) values (%s, %s, %s, 1, 'cf', %s::jsonb)",
            [user.pk, request, item.pk, json.dumps({"experiments": experiments})],
        )
    return request


def assign(experiment, user, variant, mode="auto", phase=None, at=None):
    """An assignment row as rec_assign_variant (auto) or rec_set_user_variant (manual) stores
    it, optionally back-dated."""
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into rec_user_experiment_assignments (experiment_id, user_id, variant, "
            "assignment_mode, phase, assigned_at) values (%s, %s, %s, %s, %s, "
            "coalesce(%s, now()))",
            [experiment.pk, user.pk, variant, mode, phase, at],
        )


def act(user, request, item, kind, value=None):
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id, "
            "outcome_type, value) values (%s, %s, %s, %s, %s, %s)",
            [uuid.uuid4().hex, user.pk, request, item.pk, kind, value],
        )


@pytest.fixture
def experiment(db):
    """control: 3 exposed users, 1 likes (twice). treatment: 2 exposed, both like, one rates 4
    and one rates 5; a like on an untagged impression and another experiment's tags count
    for nothing."""
    experiment = ActiveExperimentFactory(key="blend")
    item, other = MediaItemFactory(), MediaItemFactory()
    c1, c2, c3, t1, t2 = UserFactory.create_batch(5)
    r = serve(c1, item, {"blend": "control"})
    act(c1, r, item, "like")
    act(c1, serve(c1, other, {"blend": "control"}), other, "like")
    serve(c2, item, {"blend": "control"})
    untagged = serve(c3, item, {})
    act(c3, untagged, item, "like")
    serve(c3, other, {"blend": "control", "other_test": "b"})
    for user, rating in ((t1, 4), (t2, 5)):
        request = serve(user, item, {"blend": "treatment"})
        act(user, request, item, "like")
        act(user, request, item, "rating", rating)
    return experiment


def test_per_variant_definitions(experiment):
    results = experiment_results(experiment, days=7)
    control, treatment = results["variants"]

    assert results["control"] == "control"
    assert (control["exposed_users"], control["impressions"]) == (3, 4)
    assert control["outcomes"]["like"] == {"converted_users": 1, "rate": pytest.approx(1 / 3)}
    assert control["mean_rating"] is None
    assert (treatment["exposed_users"], treatment["impressions"]) == (2, 2)
    assert treatment["outcomes"]["like"] == {"converted_users": 2, "rate": 1.0}
    assert treatment["outcomes"]["rating"]["converted_users"] == 2
    assert treatment["mean_rating"] == pytest.approx(4.5)


def test_comparisons_cover_each_outcome_type_and_json_has_no_nan(experiment):
    results = experiment_results(experiment, days=7)
    like = next(c for c in results["comparisons"] if c["outcome_type"] == "like")

    assert {c["outcome_type"] for c in results["comparisons"]} == {
        "like", "dislike", "watchlist", "rating", "detail_open",
    }  # fmt: skip
    assert like["abs_lift"] == pytest.approx(2 / 3)
    assert like["rel_lift"] == pytest.approx(2.0)
    assert "NaN" not in json.dumps(results)


def test_the_first_variant_is_control_without_one_named_so(db):
    experiment = ActiveExperimentFactory(
        variants=[
            {"name": "a", "weight": 0.5, "config": {}},
            {"name": "b", "weight": 0.5, "config": {}},
        ]
    )

    assert experiment_results(experiment, days=7)["control"] == "a"


def test_metrics_endpoint(experiment, api_client, staff_user, user):
    url = "/api/v1/admin/experiments/blend/metrics?days=7"
    assert api_client.get(url).status_code == 401
    api_client.force_authenticate(user)
    assert api_client.get(url).status_code == 403
    api_client.force_authenticate(staff_user)

    body = api_client.get(url).json()

    assert set(body) >= {"experiment", "days", "control", "srm", "variants", "comparisons"}
    assert body["srm"]["flagged"] is False
    assert api_client.get("/api/v1/admin/experiments/nope/metrics").status_code == 404
    assert "days" in api_error_fields(
        api_client.get("/api/v1/admin/experiments/blend/metrics?days=0")
    )


def test_experiment_report_prints_a_table_and_judges_a_guardrail_on_its_interval(experiment):
    out = io.StringIO()
    call_command("experiment_report", "blend", "--days", "7", stdout=out)
    assert "treatment" in out.getvalue() and "like" in out.getvalue()

    # Treatment's like rate is up on 5 users: the point estimate passes a 0.1 rise, but its
    # interval does not lie wholly above it, so the guardrail passes (exit 0); a limit the
    # whole interval exceeds fails with exit 1 (tests/telemetry/results/test_guardrails.py).
    experiment.guardrails = [{"metric": "like_rate", "max_rise": 0.1}]
    experiment.save()
    out = io.StringIO()
    call_command("experiment_report", "blend", "--json", stdout=out)

    [guardrail] = json.loads(out.getvalue())["guardrails"]
    assert guardrail["value"] > 0.1 and guardrail["ci_low"] < 0.1 < guardrail["ci_high"]
    assert guardrail["status"] == "passed" and guardrail["passed"] is True


def test_untagged_impressions_guardrail_reads_telemetry(experiment):
    experiment.guardrails = [{"metric": "untagged_impressions", "max_share": 0.01}]
    experiment.save()

    [guardrail] = experiment_results(experiment, days=7)["guardrails"]

    assert guardrail["passed"] is False and guardrail["value"] == pytest.approx(1 / 7)
    assert guardrail["status"] == "failed" and guardrail["ci_low"] is None


def test_admin_results_page_shows_comparisons_and_a_red_srm_banner(client, staff_user, db):
    experiment = ActiveExperimentFactory(key="skewed")
    item = MediaItemFactory()
    for index, user in enumerate(UserFactory.create_batch(60)):
        variant = "control" if index < 50 else "treatment"
        assign(experiment, user, variant)
        serve(user, item, {"skewed": variant})
    client.force_login(staff_user)

    page = client.get(f"/admin/recsys_experiments/experiment/{experiment.pk}/results/")

    assert 'id="recsys-srm"' in page.content.decode()
    assert 'id="recsys-comparisons"' in page.content.decode()


@pytest.mark.parametrize(
    ("guardrails", "path"),
    [
        ("like_rate", "guardrails"),
        ([{"metric": "speed"}], "guardrails[0].metric"),
        ([{"metric": "like_rate"}], "guardrails[0]"),
        ([{"metric": "like_rate", "max_drop": -0.1}], "guardrails[0].max_drop"),
        ([{"metric": "untagged_impressions", "max_share": 2}], "guardrails[0].max_share"),
        ([{"metric": "rating_rate", "max_drop": 0.1}], "guardrails[0].metric"),  # no such metric
        ([{"metric": "untagged_impressions", "max_drop": 0.1}], "guardrails[0]"),
    ],
)
def test_bad_guardrails_are_rejected_naming_the_path(db, api_client, staff_user, guardrails, path):
    api_client.force_authenticate(staff_user)
    body = {
        "key": "guarded",
        "variants": [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        "guardrails": guardrails,
    }

    response = api_client.post("/api/v1/admin/experiments", body, format="json")

    assert response.status_code == 400 and path in api_error_fields(response)
