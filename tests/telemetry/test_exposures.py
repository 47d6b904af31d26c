"""POST /api/v1/exposures: the app records that it showed the user their variant. Batched and
judged item by item like outcomes; stored once per user event id; row-level security like
rec_outcomes."""

import json
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from recsys_experiments.db_roles import END_USER_ROLE, SERVICE_ROLE, acting_as
from recsys_experiments.models import Assignment
from recsys_experiments.services.assignments import assignment_override
from telemetry.models import Exposure
from telemetry.services import MAX_BATCH
from tests.factories.experiments import ActiveExperimentFactory, ExperimentFactory
from tests.factories.users import UserFactory
from tests.helpers import api_error_fields

URL = "/api/v1/exposures"


def post(client, exposures, **extra):
    return client.post(URL, {"exposures": exposures, **extra}, format="json")


def raw(client, text):
    return client.post(URL, text, content_type="application/json")


@pytest.fixture
def onboarding(db):
    return ActiveExperimentFactory(key="onboarding_v2")


def variant_of(client, key):
    body = client.post("/api/v1/assignments", {}, format="json").json()
    return body["assignments"][key]["variant"]


def test_an_exposure_is_stored_with_its_variant_and_tag(app_client, app_user, onboarding):
    other = ActiveExperimentFactory(key="button_colour")
    variant = variant_of(app_client, onboarding.key)
    colour = variant_of(app_client, other.key)

    response = post(
        app_client,
        [{"event_id": "e1", "experiment_key": onboarding.key, "variant": variant}],
        platform="ios",
        app_version="3.1.0",
    )

    assert response.status_code == 200, response.content
    assert response.json() == {
        "accepted": 1,
        "duplicate": 0,
        "rejected": 0,
        "results": [{"index": 0, "event_id": "e1", "status": "accepted"}],
    }
    stored = Exposure.objects.get()
    assert (stored.user_id, stored.experiment_id, stored.variant) == (
        app_user.pk,
        onboarding.pk,
        variant,
    )
    assert stored.request_context == {
        "experiments": {onboarding.key: variant, other.key: colour},
        "platform": "ios",
        "app_version": "3.1.0",
    }


def test_an_exposure_before_any_assignment_assigns_the_hashed_variant(
    app_client, app_user, onboarding
):
    # An app that evaluated the manifest itself reports an exposure first.
    response = post(app_client, [{"event_id": "e1", "experiment_key": onboarding.key}])

    assert response.json()["accepted"] == 1
    assignment = Assignment.objects.get(user=app_user, experiment=onboarding)
    assert assignment.assignment_mode == "auto"
    assert Exposure.objects.get().variant == assignment.variant


def test_repeats_are_stored_once(app_client, onboarding):
    item = {"event_id": "same", "experiment_key": onboarding.key}
    first = post(app_client, [item]).json()
    again = post(app_client, [item, item, {**item, "event_id": "new"}]).json()

    assert (first["accepted"], first["duplicate"]) == (1, 0)
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate", "accepted"]
    assert Exposure.objects.count() == 2


def test_event_ids_are_per_user(app_client, onboarding):
    """Another user's event id neither collides nor reveals anything."""
    bob = UserFactory()
    _, key = AuthToken.objects.create(user=bob)
    bob_client = APIClient()
    bob_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    item = {"event_id": "shared-id", "experiment_key": onboarding.key}

    assert post(bob_client, [item]).json()["accepted"] == 1
    assert post(app_client, [item]).json()["accepted"] == 1
    assert Exposure.objects.filter(event_id="shared-id").count() == 2


def test_a_wrong_variant_or_an_ineligible_user_is_rejected(app_client, app_user, onboarding):
    ActiveExperimentFactory(key="ios_only", platform="ios")
    ActiveExperimentFactory(key="nobody", traffic=0.0)
    ExperimentFactory(key="a_draft")
    assignment_override(
        experiment=onboarding, user=app_user, variant="treatment", actor=None, source="test"
    )

    body = post(
        app_client,
        [
            {"event_id": "a", "experiment_key": onboarding.key, "variant": "control"},
            {"event_id": "b", "experiment_key": "ios_only"},
            {"event_id": "c", "experiment_key": "nobody"},
            {"event_id": "d", "experiment_key": "a_draft"},
            {"event_id": "e", "experiment_key": "no_such_key"},
            {"event_id": "f", "experiment_key": onboarding.key, "variant": "treatment"},
        ],
        platform="android",
    ).json()

    assert [r["status"] for r in body["results"]] == ["rejected"] * 5 + ["accepted"]
    errors = [r.get("errors") for r in body["results"]]
    assert errors[0] == {"variant": "is not the user's variant in this experiment"}
    assert "not in this experiment" in errors[1]["experiment_key"]
    assert "not in this experiment" in errors[2]["experiment_key"]
    assert errors[3] == errors[4] == {"experiment_key": "no active experiment has this key"}
    assert list(Exposure.objects.values_list("variant", flat=True)) == ["treatment"]
    # Rejected items assign nobody.
    assert not Assignment.objects.filter(user=app_user, experiment__key="nobody").exists()


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ("not an object", "exposures[0]"),
        ({"experiment_key": "onboarding_v2"}, "event_id"),
        ({"event_id": 7, "experiment_key": "onboarding_v2"}, "event_id"),
        ({"event_id": "x" * 129, "experiment_key": "onboarding_v2"}, "event_id"),
        ({"event_id": "e"}, "experiment_key"),
        ({"event_id": "e", "experiment_key": ["onboarding_v2"]}, "experiment_key"),
        ({"event_id": "e", "experiment_key": "Bad Key"}, "experiment_key"),
        ({"event_id": "e", "experiment_key": "onboarding_v2", "variant": 1}, "variant"),
        ({"event_id": "e", "experiment_key": "onboarding_v2", "variant": ""}, "variant"),
        ({"event_id": "e", "experiment_key": "onboarding_v2", "occurred_at": 5}, "occurred_at"),
        (
            {"event_id": "e", "experiment_key": "onboarding_v2", "occurred_at": "2026-02-30"},
            "occurred_at",
        ),
        (
            {"event_id": "e", "experiment_key": "onboarding_v2", "occurred_at": "1969-12-31"},
            "occurred_at",
        ),
        ({"event_id": "e", "experiment_key": "onboarding_v2", "user_id": "x"}, "user_id"),
    ],
)
def test_a_bad_item_is_rejected_alone(app_client, onboarding, item, field):
    body = post(app_client, [item, {"event_id": "good", "experiment_key": onboarding.key}])

    assert body.status_code == 200, body.content
    first, second = body.json()["results"]
    assert first["status"] == "rejected" and field in first["errors"], first
    assert second["status"] == "accepted"


def test_the_future_skew_guard(app_client, onboarding):
    now = timezone.now()
    body = post(
        app_client,
        [
            {
                "event_id": "soon",
                "experiment_key": onboarding.key,
                "occurred_at": (now + timedelta(minutes=4)).isoformat(),
            },
            {
                "event_id": "later",
                "experiment_key": onboarding.key,
                "occurred_at": (now + timedelta(minutes=6)).isoformat(),
            },
        ],
    ).json()

    assert [r["status"] for r in body["results"]] == ["accepted", "rejected"]
    assert body["results"][1]["errors"] == {"occurred_at": "is more than 5 minutes in the future"}


def test_nul_bytes_and_lone_surrogates_in_an_item_reject_only_that_item(app_client, onboarding):
    body = raw(
        app_client,
        '{"exposures": [{"event_id": "a\\u0000", "experiment_key": "onboarding_v2"},'
        ' {"event_id": "b", "experiment_key": "onboarding_v2", "variant": "\\ud800"},'
        ' {"event_id": "c", "experiment_key": "onboarding_v2"}]}',
    ).json()

    assert [r["status"] for r in body["results"]] == ["rejected", "rejected", "accepted"]
    assert "NUL" in body["results"][0]["errors"]["event_id"]
    assert body["results"][0]["event_id"] is None
    assert "variant" in body["results"][1]["errors"]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[]", "exposures"),
        ("{}", "exposures"),
        ('{"exposures": []}', "exposures"),
        ('{"exposures": {"event_id": "e"}}', "exposures"),
        (json.dumps({"exposures": [{}] * (MAX_BATCH + 1)}), "exposures"),
        ('{"exposures": [{}], "platform": "windows"}', "platform"),
        ('{"exposures": [{}], "app_version": 3}', "app_version"),
        ('{"exposures": [{}], "app_version": "3.0\\n"}', "app_version"),
        ('{"exposures": [{}], "platform": "ios\\u0000"}', "platform"),
        ('{"exposures": [{}], "user_id": "someone-else"}', "user_id"),
    ],
)
def test_a_bad_batch_is_a_400_naming_the_field(app_client, text, field):
    response = raw(app_client, text)

    assert response.status_code == 400, response.content
    assert field in api_error_fields(response)
    assert not Exposure.objects.exists()


def test_anonymous_is_refused(db, api_client):
    assert post(api_client, [{"event_id": "e", "experiment_key": "x"}]).status_code == 401


# Row-level security, as for rec_outcomes.


def insert(user, experiment, event_id):
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into rec_exposures (event_id, user_id, experiment_id, variant,"
            " request_context, occurred_at, created_at)"
            " values (%s, %s, %s, 'control', '{}', now(), now())",
            [event_id, user.pk, experiment.pk],
        )


def count(query="select count(*) from rec_exposures"):
    with connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchone()[0]


def refused(query, params=()):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(query, params)


def test_row_level_security_is_like_outcomes(onboarding):
    alice, bob = UserFactory(), UserFactory()
    insert(alice, onboarding, "alice-1")
    insert(bob, onboarding, "bob-1")

    with acting_as(END_USER_ROLE, alice.pk):
        assert count() == 1
        assert count("select count(*) from rec_exposures where event_id = 'bob-1'") == 0
        refused(
            "insert into rec_exposures (event_id, user_id, experiment_id, variant)"
            " values ('forged', %s, %s, 'control')",
            [bob.pk, onboarding.pk],
        )
        refused("update rec_exposures set variant = 'treatment'")
        refused("delete from rec_exposures")
        insert(alice, onboarding, "alice-2")
    with acting_as(END_USER_ROLE, None):
        assert count() == 0
    with acting_as(SERVICE_ROLE, alice.pk):
        assert count() == 3
    assert count("select count(*) from rec_exposures where event_id = 'forged'") == 0
