"""POST /api/v1/conversions: the app records custom events with a value for its signed-in
user, batched and judged item by item like outcomes (the service's rules are in
test_conversions.py; here what a client sees through the API, hostile input included)."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from knox.models import AuthToken
from rest_framework.test import APIClient

from telemetry.models import Conversion
from tests.factories.users import UserFactory
from tests.helpers import api_error_fields


def conversion(event_id="c-0", **overrides):
    return {
        "event_id": event_id,
        "metric_name": "purchase",
        "value": 12.5,
        "metadata": {"currency": "EUR", "sku": "abc"},
        **overrides,
    }


def post(client, conversions, raw_values=None, **extra_body):
    """The batch as the app's JSON encoder sends it (ASCII: a lone surrogate travels as its
    \\uD800 escape). `raw_values` replaces a quoted placeholder with raw JSON (1e400)."""
    body = json.dumps({"conversions": conversions, **extra_body})
    for placeholder, raw in (raw_values or {}).items():
        body = body.replace(json.dumps(placeholder), raw)
    return client.post("/api/v1/conversions", body, content_type="application/json")


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user)[1]}")
    return client


def test_an_accepted_batch_is_stored_for_the_caller(app_client, app_user):
    response = post(
        app_client,
        [
            conversion("c-0"),
            conversion("c-1", metric_name="watch_seconds", value=93, metadata=None),
            conversion("c-2", metric_name="add_to_cart", value=1, occurred_at="2026-01-05T10:00Z"),
        ],
    )

    assert response.status_code == 200
    assert response.json() == {
        "accepted": 3,
        "duplicate": 0,
        "rejected": 0,
        "results": [
            {"index": 0, "event_id": "c-0", "status": "accepted"},
            {"index": 1, "event_id": "c-1", "status": "accepted"},
            {"index": 2, "event_id": "c-2", "status": "accepted"},
        ],
    }
    stored = {c.event_id: c for c in Conversion.objects.all()}
    assert {c.user_id for c in stored.values()} == {app_user.pk}
    assert (stored["c-0"].metric_name, stored["c-0"].value) == ("purchase", 12.5)
    assert stored["c-0"].metadata == {"currency": "EUR", "sku": "abc"}
    assert (stored["c-1"].value, stored["c-1"].metadata) == (93.0, {})
    assert stored["c-2"].occurred_at.isoformat() == "2026-01-05T10:00:00+00:00"
    assert stored["c-1"].request_context == {"experiments": {}}


def test_a_repeated_event_id_is_stored_once_in_and_across_batches(app_client):
    in_batch = post(app_client, [conversion("a"), conversion("a", value=99)]).json()
    again = post(app_client, [conversion("a"), conversion("b")]).json()

    assert [r["status"] for r in in_batch["results"]] == ["accepted", "duplicate"]
    assert [r["status"] for r in again["results"]] == ["duplicate", "accepted"]
    assert (again["accepted"], again["duplicate"]) == (1, 1)
    # The first one wins: a retry never overwrites the stored value.
    assert Conversion.objects.get(event_id="a").value == 12.5
    assert Conversion.objects.count() == 2


def test_event_ids_are_per_user_and_nobody_writes_for_another(app_client, app_user):
    other = UserFactory()
    theirs = post(client_for(other), [conversion("same")]).json()
    mine = post(app_client, [conversion("same")]).json()

    # A user_id naming someone else: refused for the whole request (top level) or the item.
    top_level = post(app_client, [conversion("x")], user_id=str(other.pk))
    in_item = post(app_client, [conversion("y", user_id=str(other.pk))]).json()

    assert theirs["results"][0]["status"] == mine["results"][0]["status"] == "accepted"
    assert top_level.status_code == 400
    assert list(api_error_fields(top_level)) == ["user_id"]
    assert in_item["results"][0]["status"] == "rejected"
    assert in_item["results"][0]["errors"] == {"user_id": "is not a conversion field"}
    assert sorted(Conversion.objects.values_list("user_id", "event_id")) == sorted(
        [(app_user.pk, "same"), (other.pk, "same")]
    )


def test_conversions_need_a_token(api_client, db):
    assert post(api_client, [conversion()]).status_code == 401
    assert not Conversion.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"conversions": []},
        {"conversions": "purchase"},
        {"something": "else"},
        {"conversions": None},
        {"conversions": {"event_id": "x"}},
        {"conversions": [conversion(f"e{n}") for n in range(501)]},
    ],
)
def test_a_malformed_batch_is_400_in_the_error_shape_and_stores_nothing(app_client, body):
    response = app_client.post("/api/v1/conversions", body, format="json")

    assert response.status_code == 400
    assert set(api_error_fields(response)) <= {"conversions", "body"}
    assert not Conversion.objects.exists()


def test_nan_and_infinity_literals_are_not_json(app_client):
    for literal in ("NaN", "Infinity", "-Infinity"):
        response = app_client.post(
            "/api/v1/conversions",
            '{"conversions": [{"event_id": "n", "metric_name": "x1", "value": VALUE}]}'.replace(
                "VALUE", literal
            ),
            content_type="application/json",
        )
        assert response.status_code == 400, literal
    assert not Conversion.objects.exists()


def test_a_body_beyond_the_size_limit_is_413(app_client, settings):
    settings.API_MAX_BODY_BYTES = 2000
    response = post(app_client, [conversion(metadata={"blob": "x" * 3000})])

    assert response.status_code == 413
    assert not Conversion.objects.exists()


def nested(levels: int) -> dict:
    node: dict = {"leaf": 1}
    for _ in range(levels - 1):
        node = {"n": node}
    return node


BAD_ITEMS = {
    "a string": ("purchase", "conversions[1]"),
    "a number": (5, "conversions[1]"),
    "null": (None, "conversions[1]"),
    "a list": ([conversion()], "conversions[1]"),
    "NUL in event_id": ({"event_id": "bad\x00"}, "event_id"),
    "NUL in metric_name": ({"metric_name": "purchase\x00"}, "metric_name"),
    "NUL in occurred_at": ({"occurred_at": "2026-01-01T00:00:00\x00"}, "occurred_at"),
    "NUL in metadata text": ({"metadata": {"note": "a\x00b"}}, "metadata"),
    "NUL in a metadata key": ({"metadata": {"a\x00": 1}}, "metadata"),
    "surrogate in metric_name": ({"metric_name": "\ud800"}, "metric_name"),
    "surrogate in metadata": ({"metadata": {"note": "\udfff"}}, "metadata"),
    "surrogate in an unknown field's name": ({"\ud800": 1}, "\\ud800"),
    "30 February": ({"occurred_at": "2026-02-30T10:00:00Z"}, "occurred_at"),
    "hour 25": ({"occurred_at": "2026-01-01T25:00:00Z"}, "occurred_at"),
    "offset +25:00": ({"occurred_at": "2026-01-01T10:00:00+25:00"}, "occurred_at"),
    "before 1970": ({"occurred_at": "1969-12-31T23:59:59Z"}, "occurred_at"),
    "year 1 east of UTC": ({"occurred_at": "0001-01-01T00:00:00+01:00"}, "occurred_at"),
    "far future": ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
    "epoch number timestamp": ({"occurred_at": 1767225600}, "occurred_at"),
    "no value": ({"value": None}, "value"),
    "string value": ({"value": "12.5"}, "value"),
    "bool value": ({"value": True}, "value"),
    "list value": ({"value": [1]}, "value"),
    "infinite value": ({"value": "INF"}, "value"),
    "minus infinite value": ({"value": "-INF"}, "value"),
    "huge int value": ({"value": 10**400}, "value"),
    "no metric_name": ({"metric_name": None}, "metric_name"),
    "numeric metric_name": ({"metric_name": 7}, "metric_name"),
    "metric_name with capitals": ({"metric_name": "Purchase"}, "metric_name"),
    "metric_name with a space": ({"metric_name": "add to cart"}, "metric_name"),
    "metric_name with a trailing newline": ({"metric_name": "purchase\n"}, "metric_name"),
    "metric_name too long": ({"metric_name": "p" * 64}, "metric_name"),
    "numeric event_id": ({"event_id": 5}, "event_id"),
    "event_id too long": ({"event_id": "x" * 129}, "event_id"),
    "list metadata": ({"metadata": [1, 2]}, "metadata"),
    "string metadata": ({"metadata": "{}"}, "metadata"),
    "huge metadata": ({"metadata": {"blob": "x" * 5000}}, "metadata"),
    "deep metadata": ({"metadata": nested(5)}, "metadata"),
    "very deep metadata": ({"metadata": nested(60)}, "metadata"),
    "infinite number in metadata": ({"metadata": {"price": "INF"}}, "metadata"),
    "a user_id": ({"user_id": 1}, "user_id"),
}
RAW_JSON = {"INF": "1e400", "-INF": "-1e400"}  # parsed as float infinity


@pytest.mark.parametrize(("bad", "field"), BAD_ITEMS.values(), ids=BAD_ITEMS.keys())
def test_a_bad_item_is_rejected_alone_naming_the_field(app_client, app_user, bad, field):
    if isinstance(bad, dict):
        bad = {**conversion("bad"), **bad}

    response = post(
        app_client, [conversion("good-0"), bad, conversion("good-2")], raw_values=RAW_JSON
    )

    assert response.status_code == 200
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "accepted"]
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 0, 1)
    rejected = body["results"][1]
    assert field in rejected["errors"]
    assert all(isinstance(reason, str) and reason for reason in rejected["errors"].values())
    assert rejected["event_id"] in (None, "bad")
    assert sorted(Conversion.objects.values_list("event_id", flat=True)) == ["good-0", "good-2"]
    assert set(Conversion.objects.values_list("user_id", flat=True)) == {app_user.pk}


def test_the_future_guard_is_five_minutes(app_client):
    soon = (timezone.now() + timedelta(minutes=4)).isoformat()
    later = (timezone.now() + timedelta(minutes=6)).isoformat()

    body = post(app_client, [conversion("a", occurred_at=soon), conversion("b", occurred_at=later)])

    assert [r["status"] for r in body.json()["results"]] == ["accepted", "rejected"]
    assert body.json()["results"][1]["errors"] == {
        "occurred_at": "is more than 5 minutes in the future"
    }


def test_the_schema_documents_the_endpoint_and_leaves_items_to_the_server(db):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/conversions"]["post"]
    [content_type] = operation["requestBody"]["content"]
    reference = operation["requestBody"]["content"][content_type]["schema"]["$ref"]
    batch = schema["components"]["schemas"][reference.rsplit("/", 1)[1]]
    items = batch["properties"]["conversions"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]

    assert reference.endswith("/ConversionBatchRequest")
    assert answer.endswith("/ConversionBatchResult")
    assert batch["required"] == ["conversions"]
    assert (items["type"], items["minItems"], items["maxItems"]) == ("array", 1, 500)
    assert "type" not in items["items"] and "required" not in items["items"]
    assert "metric_name" in items["items"]["description"]
    result = schema["components"]["schemas"]["ConversionResult"]
    assert set(result["properties"]) == {"index", "event_id", "status", "errors"}
