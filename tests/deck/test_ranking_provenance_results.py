"""Results, the report and the results page show which profile, version and final knobs
served each variant (request_context.ranking written by the real deck)."""

import io
import json
import uuid

from django.core.management import call_command
from django.db import connection

from deck.models import RankingProfile, UserSegment
from deck.profiles import ranking_profile_save
from deck.services import deck_build
from recsys_experiments.db_roles import END_USER_ROLE, acting_as
from recsys_experiments.lib.knobs import DEFAULT_KNOBS, knobs_hash
from recsys_experiments.services.assignments import assignment_override
from telemetry.results.analysis import experiment_results
from tests.factories.experiments import ActiveExperimentFactory
from tests.factories.users import UserFactory
from tests.helpers import admin_page_url


def deck(user, limit):
    with acting_as(END_USER_ROLE, user.pk):
        deck_build(user=user, limit=limit, platform=None, app_version=None)


def test_results_list_the_provenance_per_variant_with_impression_counts(admin, catalog):
    experiment = ActiveExperimentFactory(
        key="blend",
        variants=[
            {"name": "control", "weight": 0.5, "config": {}},
            {"name": "treatment", "weight": 0.5, "config": {"cf_weight": 0.9}},
        ],
    )
    cold = ranking_profile_save(
        name="cold", knobs={"popularity_weight": 0.5}, bindings=[{"segment": "cold_start"}]
    )
    users = UserFactory.create_batch(2)
    UserSegment.objects.create(user=users[0], fixture="acme", segment="cold_start")
    for user, variant in zip(users, ("control", "treatment"), strict=True):
        assignment_override(
            experiment=experiment, user=user, variant=variant, actor=None, source="test"
        )
    deck(users[0], 3)  # cold v1, control
    deck(users[1], 4)  # default v1, treatment
    cold = ranking_profile_save(
        profile=cold, name="cold", knobs={"popularity_weight": 0.6}, bindings=cold.bindings
    )
    deck(users[0], 2)  # cold v2, control
    with connection.cursor() as cursor:  # an impression from before provenance existed
        cursor.execute(
            "insert into rec_impressions (user_id, rec_request_id, media_item_id, position, "
            "source, request_context) values (%s, %s, %s, 1, 'cf', %s::jsonb)",
            [
                users[1].pk,
                uuid.uuid4(),
                catalog[0].pk,
                json.dumps({"experiments": {"blend": "treatment"}}),
            ],
        )

    ranking = experiment_results(experiment)["ranking"]

    default = RankingProfile.objects.get(name="default")
    cold_v1 = knobs_hash({**DEFAULT_KNOBS, "popularity_weight": 0.5})
    cold_v2 = knobs_hash({**DEFAULT_KNOBS, "popularity_weight": 0.6})
    treated = knobs_hash({**DEFAULT_KNOBS, "cf_weight": 0.9})
    assert ranking == [
        {"variant": "control", "profile": "cold", "profile_id": cold.pk, "version": 1,
         "knobs_hash": cold_v1, "impressions": 3},
        {"variant": "control", "profile": "cold", "profile_id": cold.pk, "version": 2,
         "knobs_hash": cold_v2, "impressions": 2},
        {"variant": "treatment", "profile": "default", "profile_id": default.pk, "version": 1,
         "knobs_hash": treated, "impressions": 4},
        {"variant": "treatment", "profile": None, "profile_id": None, "version": None,
         "knobs_hash": None, "impressions": 1},
    ]  # fmt: skip

    out = io.StringIO()
    call_command("experiment_report", "blend", stdout=out)
    lines = [" ".join(line.split()) for line in out.getvalue().splitlines()]
    assert f"control cold (#{cold.pk}) 2 {cold_v2[:12]} 2" in lines
    assert "treatment — — not recorded 1" in lines

    page = admin.get(admin_page_url("experiment_results", experiment)).content.decode()
    assert 'id="recsys-ranking"' in page
    assert f'title="{treated}"' in page and f"default (#{default.pk})" in page
