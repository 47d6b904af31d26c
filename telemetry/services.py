"""The outcome write path: validate a batch item by item, store the good ones once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import OutcomeType

MAX_BATCH = 500
MAX_FUTURE = timedelta(minutes=5)
ITEM_FIELDS = {
    "event_id",
    "rec_request_id",
    "media_item_id",
    "outcome_type",
    "value",
    "occurred_at",
}


def _rating_is_valid(value) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0.5 <= value <= 5
        and float(value * 2).is_integer()
    )


def _check_item(item: dict, now: datetime) -> tuple[dict, dict]:
    """(cleaned fields, {field: reason}) for one outcome, without touching the database."""
    errors, cleaned = {}, {}
    for unknown in sorted(set(item) - ITEM_FIELDS):
        errors[unknown] = "is not an outcome field"
    event_id = item.get("event_id")
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 128:
        errors["event_id"] = "required: a string of 1-128 characters"
    cleaned["event_id"] = event_id
    try:
        cleaned["rec_request_id"] = uuid.UUID(str(item.get("rec_request_id")))
    except ValueError:
        errors["rec_request_id"] = "required: the rec_request_id of the deck that served the item"
    media_item_id = item.get("media_item_id")
    if not isinstance(media_item_id, int) or isinstance(media_item_id, bool):
        errors["media_item_id"] = "required: an integer media item id"
    cleaned["media_item_id"] = media_item_id
    outcome_type, value = item.get("outcome_type"), item.get("value")
    if outcome_type not in OutcomeType.values:
        errors["outcome_type"] = f"must be one of {', '.join(OutcomeType.values)}"
    elif outcome_type == OutcomeType.RATING and not _rating_is_valid(value):
        errors["value"] = "a rating needs a value from 0.5 to 5 in steps of 0.5"
    elif outcome_type != OutcomeType.RATING and value is not None:
        errors["value"] = f"a {outcome_type} outcome takes no value"
    cleaned["outcome_type"] = outcome_type
    cleaned["value"] = float(value) if "value" not in errors and value is not None else None
    occurred_at = item.get("occurred_at")
    if occurred_at is None:
        cleaned["occurred_at"] = now
    else:
        parsed = parse_datetime(occurred_at) if isinstance(occurred_at, str) else None
        if parsed is None:
            errors["occurred_at"] = "must be an ISO 8601 timestamp"
        else:
            if timezone.is_naive(parsed):
                parsed = parsed.replace(tzinfo=UTC)
            if parsed > now + MAX_FUTURE:
                errors["occurred_at"] = "is more than 5 minutes in the future"
            cleaned["occurred_at"] = parsed
    return cleaned, errors


def _known_items(ids: set[int]) -> set[int]:
    if not ids:
        return set()
    with connection.cursor() as cursor:
        cursor.execute("select id from media_items where id = any(%s)", [list(ids)])
        return {row[0] for row in cursor.fetchall()}


def _foreign_requests(user, request_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Requests whose impressions belong to another user. The SQL function answers only for
    the transaction's user (app_current_user_id()), which must be `user`."""
    if not request_ids:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "select rec_requests_of_other_users(%s, %s::uuid[])", [user.pk, list(request_ids)]
        )
        return {row[0] for row in cursor.fetchall()}


@transaction.atomic
def outcomes_record(*, user, outcomes: list[dict]) -> dict:
    """Validate each outcome and store the valid ones (a repeated event_id is stored once).
    An outcome whose (request, item) was never served is stored: the health views count it.
    Runs as `user` (app.user_id set to them, e.g. through acting_as), as the API does."""
    now = timezone.now()
    checked = [_check_item(item, now) for item in outcomes]
    known_items = _known_items({c["media_item_id"] for c, e in checked if "media_item_id" not in e})
    foreign = _foreign_requests(
        user, {c["rec_request_id"] for c, e in checked if "rec_request_id" not in e}
    )
    results, to_store, seen = [], [], set()
    for index, (cleaned, errors) in enumerate(checked):
        if "media_item_id" not in errors and cleaned["media_item_id"] not in known_items:
            errors["media_item_id"] = "no such media item"
        if "rec_request_id" not in errors and cleaned["rec_request_id"] in foreign:
            errors["rec_request_id"] = "belongs to another user's deck"
        result = {"index": index, "event_id": cleaned["event_id"]}
        if errors:
            results.append({**result, "status": "rejected", "errors": errors})
        elif cleaned["event_id"] in seen:
            results.append({**result, "status": "duplicate"})
        else:
            seen.add(cleaned["event_id"])
            to_store.append(cleaned)
            results.append({**result, "status": "accepted"})
    stored = _insert(user, to_store)
    for result in results:
        if result["status"] == "accepted" and result["event_id"] not in stored:
            result["status"] = "duplicate"
    counts = {status: 0 for status in ("accepted", "duplicate", "rejected")}
    for result in results:
        counts[result["status"]] += 1
    return {**counts, "results": results}


def _insert(user, outcomes: list[dict]) -> set[str]:
    """Insert in one statement; returns the event ids actually stored (new ones)."""
    if not outcomes:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id,
                                      outcome_type, value, occurred_at, created_at)
            select o.event_id, %s, o.rec_request_id, o.media_item_id, o.outcome_type, o.value,
                   o.occurred_at, now()
            from unnest(%s::text[], %s::uuid[], %s::bigint[], %s::text[], %s::float8[],
                        %s::timestamptz[])
                 as o(event_id, rec_request_id, media_item_id, outcome_type, value, occurred_at)
            on conflict (user_id, event_id) do nothing
            returning event_id
            """,
            [
                user.pk,
                [o["event_id"] for o in outcomes],
                [o["rec_request_id"] for o in outcomes],
                [o["media_item_id"] for o in outcomes],
                [o["outcome_type"] for o in outcomes],
                [o["value"] for o in outcomes],
                [o["occurred_at"] for o in outcomes],
            ],
        )
        return {row[0] for row in cursor.fetchall()}
