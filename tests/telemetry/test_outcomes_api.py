import itertools
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import caches
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from knox.models import AuthToken
from rest_framework.test import APIClient

from telemetry.models import Outcome, OutcomeType
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


def post(client, outcomes, raw_values=None):
    """The batch as the app's JSON encoder sends it: ASCII, so a lone surrogate travels as
    its \\uD800 escape. `raw_values` replaces a quoted placeholder with raw JSON (1e400)."""
    body = json.dumps({"outcomes": outcomes})
    for placeholder, raw in (raw_values or {}).items():
        body = body.replace(json.dumps(placeholder), raw)
    return client.post("/api/v1/outcomes", body, content_type="application/json")


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
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user)[1]}")
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


def test_a_batch_costs_the_same_queries_whatever_its_size(app_client, deck, catalog):
    def queries_for(outcomes):
        # The counters' cache counts its table on every 64th set of the process (db_cache.py):
        # start each measurement away from one, whatever ran before in this process.
        caches["default"]._sets = itertools.count(1)
        default = CaptureQueriesContext(connections["default"])
        counters = CaptureQueriesContext(connections[settings.AUTOCOMMIT_DATABASE])
        with default, counters:
            body = post(app_client, outcomes).json()
        return body, len(default), len(counters)

    one = queries_for([outcome(deck, 0)])
    big_batch = [
        outcome(deck, 0, event_id=f"big-{n}", media_item_id=item.pk)
        for n, item in enumerate(catalog[:40])
    ]
    big_batch += [outcome(deck, 1, event_id="big-0"), outcome(deck, 2, media_item_id=10**12)]
    forty_two = queries_for(big_batch)

    assert (one[0]["accepted"], forty_two[0]["accepted"]) == (1, 40)
    assert (forty_two[0]["duplicate"], forty_two[0]["rejected"]) == (1, 1)
    assert forty_two[0]["results"][41]["errors"] == {"media_item_id": "no such media item"}
    assert one[1:] == forty_two[1:]


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
        {"something": "else"},
        {"outcomes": None},
        {"outcomes": {"event_id": "x"}},
        {"outcomes": [{"event_id": f"e{n}"} for n in range(501)]},
    ],
)
def test_a_malformed_body_is_400_and_stores_nothing(app_client, deck, body):
    response = app_client.post("/api/v1/outcomes", body, format="json")

    assert response.status_code == 400
    assert not Outcome.objects.exists()


def test_outcomes_need_a_token(api_client, deck):
    assert post(api_client, [outcome(deck, 0)]).status_code == 401


def test_a_non_json_batch_is_400_and_stores_nothing(app_client, deck):
    form = app_client.post("/api/v1/outcomes", {"outcomes": "x"}, format="multipart")
    not_json = app_client.post(
        "/api/v1/outcomes",
        '{"outcomes": [{"event_id": "n", "value": NaN}]}',  # NaN is not JSON
        content_type="application/json",
    )

    assert form.status_code == 415
    assert not_json.status_code == 400
    assert not Outcome.objects.exists()


# Each bad item is posted between two good ones: it is rejected on its own, naming the field,
# and the good ones are stored.
BAD_ITEMS = {
    # Not an object at all.
    "a string": ("not an object", "outcomes[1]"),
    "a number": (5, "outcomes[1]"),
    "null": (None, "outcomes[1]"),
    "a list": ([{"event_id": "x"}], "outcomes[1]"),
    # NUL bytes and lone surrogates in any string field.
    "NUL in event_id": ({"event_id": "bad\x00"}, "event_id"),
    "NUL in rec_request_id": (
        lambda deck: {"rec_request_id": deck["rec_request_id"] + "\x00"},
        "rec_request_id",
    ),
    "NUL in outcome_type": ({"outcome_type": "like\x00"}, "outcome_type"),
    "NUL in occurred_at": ({"occurred_at": "2026-01-01T00:00:00\x00"}, "occurred_at"),
    "surrogate in event_id": ({"event_id": "bad\ud800"}, "event_id"),
    "surrogate in rec_request_id": ({"rec_request_id": "\ud800"}, "rec_request_id"),
    "surrogate in outcome_type": ({"outcome_type": "\udfff"}, "outcome_type"),
    "surrogate in occurred_at": ({"occurred_at": "\ud800"}, "occurred_at"),
    "surrogate in an unknown field's name": ({"\ud800": 1}, "\\ud800"),
    # Impossible or out-of-range timestamps.
    "30 February": ({"occurred_at": "2026-02-30T10:00:00Z"}, "occurred_at"),
    "hour 25": ({"occurred_at": "2026-01-01T25:00:00Z"}, "occurred_at"),
    "offset +25:00": ({"occurred_at": "2026-01-01T10:00:00+25:00"}, "occurred_at"),
    "before 1970": ({"occurred_at": "1969-12-31T23:59:59Z"}, "occurred_at"),
    "year 1 east of UTC": ({"occurred_at": "0001-01-01T00:00:00+01:00"}, "occurred_at"),
    "year 9999 west of UTC": ({"occurred_at": "9999-12-31T23:59:59-23:59"}, "occurred_at"),
    "far future": ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
    "not a string timestamp": ({"occurred_at": 1767225600}, "occurred_at"),
    # Wrong types and ranges.
    "bool media_item_id": ({"media_item_id": True}, "media_item_id"),
    "string media_item_id": ({"media_item_id": "17"}, "media_item_id"),
    "float media_item_id": ({"media_item_id": 17.5}, "media_item_id"),
    "media_item_id beyond bigint": ({"media_item_id": 2**63}, "media_item_id"),
    "huge media_item_id": ({"media_item_id": 10**40}, "media_item_id"),
    "negative media_item_id": ({"media_item_id": -1}, "media_item_id"),
    "numeric event_id": ({"event_id": 5}, "event_id"),
    "object event_id": ({"event_id": {"id": "x"}}, "event_id"),
    "event_id too long": ({"event_id": "x" * 129}, "event_id"),
    "number as rec_request_id": (
        {"rec_request_id": 12345678123456781234567812345678},
        "rec_request_id",
    ),
    "list outcome_type": ({"outcome_type": ["like"]}, "outcome_type"),
    "string rating": ({"outcome_type": "rating", "value": "4.5"}, "value"),
    "bool rating": ({"outcome_type": "rating", "value": True}, "value"),
    "infinite rating": ({"outcome_type": "rating", "value": "INF"}, "value"),
    "minus infinite rating": ({"outcome_type": "rating", "value": "-INF"}, "value"),
    "huge int rating": ({"outcome_type": "rating", "value": 10**400}, "value"),
    "infinite value on a like": ({"value": "INF"}, "value"),
}
RAW_JSON = {"INF": "1e400", "-INF": "-1e400"}  # parsed as float infinity


@pytest.mark.parametrize(("bad", "field"), BAD_ITEMS.values(), ids=BAD_ITEMS.keys())
def test_a_bad_item_is_rejected_alone_and_the_rest_is_stored(
    app_client, app_user, deck, bad, field
):
    if callable(bad):
        bad = bad(deck)
    if isinstance(bad, dict):
        bad = {**outcome(deck, 1, event_id="bad"), **bad}

    response = post(
        app_client,
        [outcome(deck, 0, event_id="good-0"), bad, outcome(deck, 2, event_id="good-2")],
        raw_values=RAW_JSON,
    )

    assert response.status_code == 200
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "accepted"]
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 0, 1)
    rejected = body["results"][1]
    assert field in rejected["errors"]
    assert all(isinstance(reason, str) and reason for reason in rejected["errors"].values())
    assert rejected["event_id"] in (None, "bad")
    assert sorted(Outcome.objects.values_list("event_id", flat=True)) == ["good-0", "good-2"]
    assert set(Outcome.objects.values_list("user_id", flat=True)) == {app_user.pk}


def test_the_schema_documents_the_batch_limits_and_leaves_items_to_the_server(db):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/outcomes"]["post"]
    [content_type] = operation["requestBody"]["content"]
    reference = operation["requestBody"]["content"][content_type]["schema"]["$ref"]
    batch = schema["components"]["schemas"][reference.rsplit("/", 1)[1]]
    outcomes = batch["properties"]["outcomes"]

    assert content_type == "application/json"
    assert batch["required"] == ["outcomes"]
    assert (outcomes["type"], outcomes["minItems"], outcomes["maxItems"]) == ("array", 1, 500)
    # Any item is answered 200 (bad ones are rejected one by one), so none is schema-forbidden.
    assert "type" not in outcomes["items"] and "required" not in outcomes["items"]
    assert "outcome_type" in outcomes["items"]["description"]


def test_the_database_checks_add_to_an_items_other_errors(app_client, deck):
    body = post(app_client, [outcome(deck, 0, outcome_type="love", media_item_id=10**12)]).json()

    assert body["results"][0]["errors"] == {
        "outcome_type": "required: one of " + ", ".join(OutcomeType.values),
        "media_item_id": "no such media item",
    }


def test_an_event_id_rejected_by_the_database_checks_is_stored_from_a_later_item(app_client, deck):
    stranger = APIClient()
    _, key = AuthToken.objects.create(UserFactory())
    stranger.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    other_deck = stranger.post("/api/v1/deck", {"limit": 2}, format="json").json()

    body = post(
        app_client,
        [
            outcome(deck, 0, event_id="x", media_item_id=10**12),
            outcome(deck, 0, event_id="x", rec_request_id=other_deck["rec_request_id"]),
            outcome(deck, 1, event_id="x"),
            outcome(deck, 2, event_id="x"),
        ],
    ).json()

    assert [r["status"] for r in body["results"]] == [
        "rejected",
        "rejected",
        "accepted",
        "duplicate",
    ]
    stored = Outcome.objects.get(event_id="x")
    assert stored.media_item_id == deck["items"][1]["media_item_id"]


@pytest.mark.django_db(transaction=True)
def test_an_outcomes_request_is_four_statements(settings, catalog):
    """BEGIN, the token with the role, the checks and the insert, COMMIT; the throttle's
    counter (off here) would add its own on the counters' connection."""
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "outcomes": None}
    client = APIClient()
    _, key = AuthToken.objects.create(UserFactory())
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    deck = client.post("/api/v1/deck", {"limit": 3}, format="json").json()

    default = CaptureQueriesContext(connections["default"])
    counters = CaptureQueriesContext(connections[settings.AUTOCOMMIT_DATABASE])
    with default, counters:
        body = post(client, [outcome(deck, n, event_id=f"e{n}") for n in range(3)]).json()

    assert body["accepted"] == 3
    statements = [query["sql"] for query in default.captured_queries]
    assert len(statements) == 4, statements
    assert (statements[0], statements[3]) == ("BEGIN", "COMMIT")
    assert "rec_token_authenticate" in statements[1]
    assert "insert into rec_outcomes" in statements[2]
    assert len(counters) == 0
