from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from telemetry.models import Outcome
from tests.factories.users import UserFactory


@pytest.fixture
def deck(app_client, catalog):
    response = app_client.post("/api/v1/deck", {"limit": 5}, format="json")
    return response.json()


def outcome(deck, position=0, **overrides):
    return {
        "event_id": f"evt-{position}",
        "rec_request_id": deck["rec_request_id"],
        "media_item_id": deck["items"][position]["media_item_id"],
        "outcome_type": "like",
        **overrides,
    }


def post(client, outcomes):
    return client.post("/api/v1/outcomes", {"outcomes": outcomes}, format="json")


def test_an_accepted_batch_is_stored(app_client, app_user, deck):
    response = post(
        app_client,
        [
            outcome(deck, 0),
            outcome(deck, 1, event_id="r", outcome_type="rating", value=4),
            outcome(deck, 2, event_id="o", outcome_type="detail_open"),
        ],
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (3, 0, 0)
    assert [r["status"] for r in body["results"]] == ["accepted"] * 3
    stored = Outcome.objects.get(event_id="r")
    assert (stored.user_id, stored.outcome_type, stored.value) == (app_user.pk, "rating", 4.0)


def test_a_repeated_event_id_is_stored_once(app_client, deck):
    first = post(app_client, [outcome(deck, 0)]).json()
    again = post(app_client, [outcome(deck, 0), outcome(deck, 0)]).json()
    in_batch = post(app_client, [outcome(deck, 1), outcome(deck, 1)]).json()

    assert first["results"][0]["status"] == "accepted"
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate"]
    assert [r["status"] for r in in_batch["results"]] == ["accepted", "duplicate"]
    assert Outcome.objects.filter(event_id="evt-0").count() == 1
    assert Outcome.objects.count() == 2


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_event_ids_are_unique_per_user_not_globally(app_client, app_user, deck):
    other = UserFactory()
    other_client = client_for(other)
    other_deck = other_client.post("/api/v1/deck", {"limit": 5}, format="json").json()

    mine = post(app_client, [outcome(deck, 0)]).json()
    # The same client id from another user: neither reported as a duplicate (which would
    # reveal that someone used it) nor blocked by the first user's row.
    theirs = post(other_client, [outcome(other_deck, 0)]).json()
    mine_again = post(app_client, [outcome(deck, 0)]).json()
    theirs_again = post(other_client, [outcome(other_deck, 0)]).json()

    assert mine["results"][0]["status"] == "accepted"
    assert theirs["results"][0]["status"] == "accepted"
    assert mine_again["results"][0]["status"] == "duplicate"
    assert theirs_again["results"][0]["status"] == "duplicate"
    assert sorted(Outcome.objects.values_list("user_id", "event_id")) == sorted(
        [(app_user.pk, "evt-0"), (other.pk, "evt-0")]
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"outcome_type": "love"}, "outcome_type"),
        ({"outcome_type": "rating", "value": 5.5}, "value"),
        ({"outcome_type": "rating", "value": 3.3}, "value"),
        ({"outcome_type": "rating"}, "value"),
        ({"outcome_type": "like", "value": 1}, "value"),
        ({"media_item_id": 987654321}, "media_item_id"),
        ({"media_item_id": "abc"}, "media_item_id"),
        ({"rec_request_id": "not-a-uuid"}, "rec_request_id"),
        ({"event_id": ""}, "event_id"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_each_bad_outcome_is_rejected_naming_the_field(app_client, deck, overrides, field):
    body = post(app_client, [outcome(deck, 0, **overrides)]).json()

    [result] = body["results"]
    assert result["status"] == "rejected"
    assert field in result["errors"]
    assert not Outcome.objects.exists()


def test_future_timestamps_beyond_five_minutes_are_rejected(app_client, deck):
    soon = (timezone.now() + timedelta(minutes=4)).isoformat()
    later = (timezone.now() + timedelta(minutes=6)).isoformat()

    body = post(
        app_client,
        [outcome(deck, 0, occurred_at=soon), outcome(deck, 1, occurred_at=later)],
    ).json()

    assert [r["status"] for r in body["results"]] == ["accepted", "rejected"]
    assert "occurred_at" in body["results"][1]["errors"]


def test_another_users_request_is_rejected(app_client, deck, catalog):
    stranger = client_for(UserFactory())

    body = post(stranger, [outcome(deck, 0)]).json()

    assert body["results"][0]["errors"] == {"rec_request_id": "belongs to another user's deck"}
    assert not Outcome.objects.exists()


def test_a_mixed_batch_stores_the_good_ones(app_client, deck):
    body = post(
        app_client,
        [outcome(deck, 0), outcome(deck, 1, event_id="bad", outcome_type="love"), outcome(deck, 2)],
    ).json()

    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert set(Outcome.objects.values_list("event_id", flat=True)) == {"evt-0", "evt-2"}


def test_an_outcome_for_an_item_not_in_the_deck_is_stored(app_client, deck, catalog):
    served = {item["media_item_id"] for item in deck["items"]}
    unserved = next(item.pk for item in catalog if item.pk not in served)

    body = post(app_client, [outcome(deck, 0, media_item_id=unserved)]).json()

    assert body["accepted"] == 1  # the health views count it as an orphan


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"outcomes": []},
        {"outcomes": "like"},
        {"outcomes": [{"event_id": "fine"}, "not an object"]},
        {"outcomes": [{"event_id": f"e{n}"} for n in range(501)]},
    ],
)
def test_a_malformed_body_is_400_and_stores_nothing(app_client, deck, body):
    response = app_client.post("/api/v1/outcomes", body, format="json")

    assert response.status_code == 400
    assert not Outcome.objects.exists()


def test_outcomes_need_a_token(api_client, deck):
    assert post(api_client, [outcome(deck, 0)]).status_code == 401
