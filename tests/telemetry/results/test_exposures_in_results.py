"""App-side exposures (rec_exposures) count in the results like tagged impressions: a user
exposed only app-side is an exposed user of their variant, with zero impressions."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from telemetry.results.analysis import experiment_results
from tests.factories.catalog import MediaItemFactory
from tests.factories.experiments import ActiveExperimentFactory
from tests.factories.users import UserFactory
from tests.telemetry.results.test_analysis import act, serve


def expose(user, experiment, variant, at=None):
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into rec_exposures (event_id, user_id, experiment_id, variant,"
            " request_context, occurred_at) values (gen_random_uuid()::text, %s, %s, %s,"
            " jsonb_build_object('experiments', jsonb_build_object(%s::text, %s::text)),"
            " coalesce(%s, now()))",
            [user.pk, experiment.pk, variant, experiment.key, variant, at],
        )


@pytest.fixture
def onboarding(db):
    """control: c1 (a tagged impression with a like), c2 (app-side only). treatment: t1
    (app-side only), t2 (both: counted once). m saw both variants, b was exposed before the
    experiment started; someone else's exposure to another experiment counts for nothing."""
    experiment = ActiveExperimentFactory(key="onboarding")
    other_experiment = ActiveExperimentFactory(key="other")
    item = MediaItemFactory()
    c1, c2, t1, t2, m, b, stranger = UserFactory.create_batch(7)
    act(c1, serve(c1, item, {"onboarding": "control"}), item, "like")
    expose(c2, experiment, "control")
    expose(t1, experiment, "treatment")
    serve(t2, item, {"onboarding": "treatment"})
    expose(t2, experiment, "treatment")
    serve(m, item, {"onboarding": "control"})
    expose(m, experiment, "treatment")
    expose(b, experiment, "treatment", at=timezone.now() - timedelta(days=3))
    expose(b, experiment, "treatment")
    expose(stranger, other_experiment, "treatment")
    return experiment


def test_app_side_exposed_users_count_in_their_variant(onboarding):
    results = experiment_results(onboarding, days=7)
    control, treatment = results["variants"]

    assert (control["exposed_users"], control["impressions"]) == (2, 1)
    assert control["outcomes"]["like"] == {"converted_users": 1, "rate": 0.5}
    assert (treatment["exposed_users"], treatment["impressions"]) == (2, 1)
    assert results["excluded"] == {"manual": 0, "multiple_variants": 1, "before_phase": 1}


def test_per_user_metrics_give_app_side_users_zero_counts(onboarding, settings):
    settings.RESULTS_CUPED_DAYS = 0
    rows = {row["metric"]: row for row in experiment_results(onboarding, days=7)["metrics"]}

    assert (rows["users_with_like"]["control_value"], rows["users_with_like"]["value"]) == (
        0.5,
        0.0,
    )
    assert rows["likes_per_user"]["control_value"] == pytest.approx(0.5)
    # A ratio's denominator is impressions: the app-side users add zero to both sums.
    assert rows["like_rate"]["control_value"] == pytest.approx(1.0)


def test_with_cuped_the_app_side_users_are_still_counted(onboarding):
    rows = {row["metric"]: row for row in experiment_results(onboarding, days=7)["metrics"]}

    assert rows["users_with_like"]["cuped"] is True
    assert rows["users_with_like"]["control_value"] == pytest.approx(0.5)


def test_an_exposure_through_the_api_makes_an_exposed_user(app_client, app_user):
    experiment = ActiveExperimentFactory(key="button_colour")
    response = app_client.post(
        "/api/v1/exposures",
        {"exposures": [{"event_id": "shown-1", "experiment_key": experiment.key}]},
        format="json",
    )
    assert response.json()["accepted"] == 1

    variants = experiment_results(experiment, days=7)["variants"]

    assert sorted((v["exposed_users"], v["impressions"]) for v in variants) == [(0, 0), (1, 0)]
