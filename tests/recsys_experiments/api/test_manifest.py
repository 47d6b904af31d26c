"""GET /api/v1/experiments/manifest: GrowthBook's own Python SDK, given the manifest, evaluates
each experiment to the variant the server's hash (SQL rec_pick_variant) assigns."""

import json
import random
import uuid

import pytest
from django.db import connection
from growthbook import GrowthBook
from knox.models import AuthToken
from rest_framework.test import APIClient

from recsys_experiments.lib.manifest import manifest_version, targeting_condition
from tests.factories.experiments import ActiveExperimentFactory, ExperimentFactory
from tests.factories.users import UserFactory

URL = "/api/v1/experiments/manifest"
PLATFORMS = ["ios", "android", "web", None]
VERSIONS = ["2.9.9", "3.0.0", "3.0.1", "3.5.12", "4.2.0", "4.2.1", "10.0.0", None]


def variants(*weights):
    names = ["control", "treatment", "third"]
    return [
        {"name": names[index], "weight": weight, "config": {"n": index}}
        for index, weight in enumerate(weights)
    ]


@pytest.fixture
def experiments(db):
    ExperimentFactory(key="a_draft")
    return [
        ActiveExperimentFactory(key="onboarding_v2", variants=variants(0.6, 0.3, 0.1)),
        ActiveExperimentFactory(key="button_colour", variants=variants(0.7, 0.3), traffic=0.4),
        ActiveExperimentFactory(
            key="paywall",
            variants=variants(0.5, 0.5),
            namespace_name="checkout",
            namespace_start=0.2,
            namespace_end=0.7,
        ),
        ActiveExperimentFactory(
            key="ios_new",
            variants=variants(0.25, 0.75),
            traffic=0.8,
            platform="ios",
            min_app_version="3.0",
            max_app_version="4.2",
        ),
    ]


def server_variants(experiments, users) -> dict:
    """{(experiment key, user id): variant or None} from rec_pick_variant, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            select e.key, u.id, rec_pick_variant(
                e.salt, u.id, e.variants, e.traffic, e.namespace_name, e.namespace_start,
                e.namespace_end, e.platform, e.min_app_version, e.max_app_version,
                u.platform, u.app_version)
            from rec_experiments as e
            cross join unnest(%s::text[], %s::text[], %s::text[])
                 as u(id, platform, app_version)
            where e.key = any(%s)
            """,
            [
                [u["id"] for u in users],
                [u["platform"] for u in users],
                [u["app_version"] for u in users],
                [e.key for e in experiments],
            ],
        )
        return {(key, user): variant for key, user, variant in cursor.fetchall()}


def sdk_variant(features, user, key):
    attributes = {"id": user["id"]}
    if user["platform"] is not None:
        attributes["platform"] = user["platform"]
    if user["app_version"] is not None:
        attributes["app_version"] = user["app_version"]
    growthbook = GrowthBook(attributes=attributes, features=features)
    try:
        return growthbook.eval_feature(key).value
    finally:
        growthbook.destroy()


def test_the_manifest_is_a_growthbook_payload(app_client, experiments):
    response = app_client.get(URL)

    assert response.status_code == 200
    features = response.json()["features"]
    assert set(features) == {e.key for e in experiments}
    assert features["ios_new"] == {
        "defaultValue": None,
        "rules": [
            {
                "key": "ios_new",
                "variations": ["control", "treatment"],
                "weights": [0.25, 0.75],
                "coverage": 0.8,
                "hashAttribute": "id",
                "seed": experiments[3].salt,
                "hashVersion": 2,
                "condition": {
                    "platform": "ios",
                    "app_version": {"$vgte": "3.0.0", "$vlte": "4.2.0"},
                },
            }
        ],
    }
    assert features["paywall"]["rules"][0]["namespace"] == ["checkout", 0.2, 0.7]
    assert "namespace" not in features["onboarding_v2"]["rules"][0]
    assert "condition" not in features["onboarding_v2"]["rules"][0]


def test_the_sdk_evaluates_every_user_to_the_servers_variant(app_client, experiments):
    features = app_client.get(URL).json()["features"]
    rng = random.Random(16)
    users = [
        {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "platform": rng.choice(PLATFORMS),
            "app_version": rng.choice(VERSIONS),
        }
        for _ in range(2000)
    ]
    expected = server_variants(experiments, users)

    mismatches = [
        (key, user)
        for key in features
        for user in users
        if sdk_variant(features, user, key) != expected[(key, user["id"])]
    ]

    assert mismatches == []
    # Not a vacuous agreement: every variant, and "not in the experiment", occur.
    for experiment in experiments:
        seen = {expected[(experiment.key, user["id"])] for user in users}
        assert seen == {*experiment.variant_names, None} or (
            experiment.key == "onboarding_v2" and seen == set(experiment.variant_names)
        ), (experiment.key, seen)


def test_the_sdk_agrees_with_post_assignments_for_real_users(experiments):
    """Through the public interfaces: the variant POST /assignments stores equals the SDK's."""
    features = None
    for index in range(40):
        user = UserFactory()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
        features = features or client.get(URL).json()["features"]
        device = {"platform": PLATFORMS[index % 4], "app_version": VERSIONS[index % 8]}
        body = {key: value for key, value in device.items() if value is not None}
        assigned = client.post("/api/v1/assignments", body, format="json").json()["assignments"]
        for key in features:
            expected = assigned.get(key, {}).get("variant")
            assert sdk_variant(features, {"id": str(user.pk), **device}, key) == expected


def test_etag_and_304(app_client, experiments):
    first = app_client.get(URL)
    assert app_client.get(URL, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    experiments[0].traffic = 0.5
    experiments[0].save()
    changed = app_client.get(URL, HTTP_IF_NONE_MATCH=first["ETag"])
    assert changed.status_code == 200
    assert changed.json()["features"]["onboarding_v2"]["rules"][0]["coverage"] == 0.5


def test_the_manifest_needs_a_login(db, api_client):
    assert api_client.get(URL).status_code == 401


@pytest.mark.parametrize(
    ("stored", "shown"),
    [("3", "3.0.0"), ("3.1", "3.1.0"), ("3.0.0.0", "3.0.0"), ("1.2.3.4", "1.2.3.4")],
)
def test_version_bounds_are_written_with_three_parts(stored, shown):
    assert manifest_version(stored) == shown


def test_no_targeting_no_condition():
    assert targeting_condition(None, None, None) is None
    assert json.dumps(targeting_condition("web", None, "2")) == (
        '{"platform": "web", "app_version": {"$vlte": "2.0.0"}}'
    )
