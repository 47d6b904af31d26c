"""The outcome, conversion and exposure write paths: validate a batch item by item, store the
good ones once."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from recsys_experiments.lib.constants import KEY_RE
from recsys_experiments.lib.experiment_rules import is_number
from recsys_experiments.lib.text import json_problems

from .models import OutcomeType

MAX_BATCH = 500
MAX_FUTURE = timedelta(minutes=5)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
MAX_EVENT_ID = 128
MAX_BIGINT = 2**63 - 1
ITEM_FIELDS = {
    "event_id",
    "rec_request_id",
    "media_item_id",
    "outcome_type",
    "value",
    "occurred_at",
}
# What PostgreSQL cannot store (NUL) and UTF-8 cannot encode (a lone surrogate, which JSON's
# \uD800 escape decodes to).
UNSTORABLE = re.compile("[\\x00\\ud800-\\udfff]")
BAD_TEXT = "must not contain NUL bytes or unpaired surrogates"
# OutcomeType.values builds a new list at each access: once here, not per item.
OUTCOME_TYPES = frozenset(OutcomeType.values)
OUTCOME_TYPE_REASON = f"required: one of {', '.join(OutcomeType.values)}"


def _shown(name: str) -> str:
    """A client-chosen name made safe to echo in a JSON response (UTF-8 encodable)."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _rating_is_valid(value) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0.5 <= value <= 5  # False for NaN, inf and ints beyond any float
        and float(value * 2).is_integer()
    )


def _parse_occurred_at(raw, now: datetime) -> tuple[datetime | None, str | None]:
    """(timestamp, None) or (None, reason)."""
    if raw is None:
        return now, None
    iso = "must be an ISO 8601 timestamp"
    if not isinstance(raw, str):
        return None, iso
    try:
        # Impossible dates ("2026-02-30", hour 25, offset +25:00) raise instead of giving None.
        parsed = parse_datetime(raw)
    except (ValueError, OverflowError):
        return None, f"{iso} of a real date and time"
    if parsed is None:
        return None, iso
    try:
        parsed = parsed.replace(tzinfo=UTC) if timezone.is_naive(parsed) else parsed
        parsed = parsed.astimezone(UTC)  # year 1 or 9999 with an offset leaves the range
    except (ValueError, OverflowError):
        return None, "is out of range"
    if parsed < EARLIEST:
        return None, "is before 1970-01-01"
    if parsed > now + MAX_FUTURE:
        return None, "is more than 5 minutes in the future"
    return parsed, None


def _event_fields(item: dict, fields: set[str], noun: str) -> tuple[dict, dict]:
    """(valid fields, {field: reason}) of what every batched event (outcome, conversion,
    exposure) checks alike: no unknown fields, no text PostgreSQL cannot store, an event_id."""
    errors, cleaned = {}, {}
    for unknown in sorted(set(item) - fields):
        errors[_shown(unknown)] = f"is not {noun} field"
    for field in fields & set(item):
        if isinstance(item[field], str) and UNSTORABLE.search(item[field]):
            errors[field] = BAD_TEXT
    event_id = item.get("event_id")
    if "event_id" not in errors and (
        not isinstance(event_id, str) or not 1 <= len(event_id) <= MAX_EVENT_ID
    ):
        errors["event_id"] = f"required: a string of 1-{MAX_EVENT_ID} characters"
    # Echoed in the result only when valid: a client's junk never reaches the response.
    cleaned["event_id"] = event_id if "event_id" not in errors else None
    return cleaned, errors


def _check_occurred_at(item: dict, now: datetime, cleaned: dict, errors: dict) -> None:
    if "occurred_at" not in errors:
        occurred_at, reason = _parse_occurred_at(item.get("occurred_at"), now)
        if reason:
            errors["occurred_at"] = reason
        else:
            cleaned["occurred_at"] = occurred_at


def _judged_batch(checked: list[tuple[dict, dict]], store) -> dict:
    """The batch result every record service returns: per item rejected (with its errors),
    duplicate (its event_id came earlier in the batch, or is stored already) or accepted;
    `store(rows)` writes the valid first occurrences and returns the event ids it stored."""
    results, to_store, seen = [], [], set()
    for index, (cleaned, errors) in enumerate(checked):
        result = {"index": index, "event_id": cleaned["event_id"]}
        if errors:
            results.append({**result, "status": "rejected", "errors": errors})
        elif cleaned["event_id"] in seen:
            results.append({**result, "status": "duplicate"})
        else:
            seen.add(cleaned["event_id"])
            to_store.append(cleaned)
            results.append({**result, "status": "accepted"})
    stored = store(to_store)
    for result in results:
        if result["status"] == "accepted" and result["event_id"] not in stored:
            result["status"] = "duplicate"
    counts = {status: 0 for status in ("accepted", "duplicate", "rejected")}
    for result in results:
        counts[result["status"]] += 1
    return {**counts, "results": results}


def _check_item(index: int, item, now: datetime) -> tuple[dict, dict]:
    """(valid fields, {field: reason}) for one outcome, without touching the database; the
    first holds only the fields that passed (and event_id, None unless valid). Any JSON
    value may arrive here: each problem is this item's, never the batch's."""
    if not isinstance(item, dict):
        return {"event_id": None}, {f"outcomes[{index}]": "must be an object"}
    cleaned, errors = _event_fields(item, ITEM_FIELDS, "an outcome")

    request_id = item.get("rec_request_id")
    if "rec_request_id" not in errors:
        try:
            if not isinstance(request_id, str):
                raise ValueError(request_id)
            cleaned["rec_request_id"] = uuid.UUID(request_id)
        except ValueError:
            errors["rec_request_id"] = (
                "required: the rec_request_id (a UUID string) of the deck that served the item"
            )

    media_item_id = item.get("media_item_id")
    if (
        not isinstance(media_item_id, int)
        or isinstance(media_item_id, bool)
        or not 1 <= media_item_id <= MAX_BIGINT
    ):
        errors["media_item_id"] = "required: a positive integer media item id"
    else:
        cleaned["media_item_id"] = media_item_id

    outcome_type, value = item.get("outcome_type"), item.get("value")
    if "outcome_type" in errors:
        pass
    elif not isinstance(outcome_type, str) or outcome_type not in OUTCOME_TYPES:
        errors["outcome_type"] = OUTCOME_TYPE_REASON
    elif outcome_type == OutcomeType.RATING and not _rating_is_valid(value):
        errors["value"] = "a rating needs a finite value from 0.5 to 5 in steps of 0.5"
    elif outcome_type != OutcomeType.RATING and value is not None:
        errors["value"] = f"a {outcome_type} outcome takes no value"
    if "outcome_type" not in errors and "value" not in errors:
        cleaned["outcome_type"] = outcome_type
        cleaned["value"] = None if value is None else float(value)

    _check_occurred_at(item, now, cleaned, errors)
    return cleaned, errors


# The checks that need the database and the insert, as one statement. `batch` holds one row
# per item that has a media item id or a request id to check (`i`: its index) and `ok` for
# the items that passed every check in Python: those are inserted, in batch order, unless
# their media item is unknown or their request is another user's, each event_id once (its
# first occurrence). A repeat of a stored (user, event_id) is skipped by the table's trigger
# (rec_event_key_claim, telemetry/sql/partitions.v1.sql), so RETURNING names only new rows.
# rec_requests_of_other_users answers only for the transaction's user (app_current_user_id()),
# which must be the inserting user.
CHECK_AND_INSERT = """
with batch as materialized (
    select *
    from jsonb_to_recordset(%(batch)s::jsonb) as b(
        i integer, ok boolean, event_id text, rec_request_id uuid, media_item_id bigint,
        outcome_type text, value float8, occurred_at timestamptz)
),
unknown_items as materialized (
    select distinct b.media_item_id as id
    from batch as b
    where b.media_item_id is not null
      and not exists (select from media_items as m where m.id = b.media_item_id)
),
foreign_requests as materialized (
    select rec_requests_of_other_users(
        %(user)s,
        array(select distinct b.rec_request_id from batch as b where b.rec_request_id is not null)
    ) as id
),
stored as (
    insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id, outcome_type,
                              value, occurred_at, created_at)
    select f.event_id, %(user)s, f.rec_request_id, f.media_item_id, f.outcome_type, f.value,
           f.occurred_at, now()
    from (
        select distinct on (b.event_id) b.*
        from batch as b
        where b.ok
          and not exists (select from unknown_items as u where u.id = b.media_item_id)
          and not exists (select from foreign_requests as r where r.id = b.rec_request_id)
        order by b.event_id, b.i
    ) as f
    order by f.i
    returning event_id
)
select array(select id from unknown_items),
       array(select id from foreign_requests),
       array(select event_id from stored)
"""


def _batch_row(index: int, cleaned: dict, ok: bool) -> dict | None:
    row = {"i": index, "ok": ok}
    if "media_item_id" in cleaned:
        row["media_item_id"] = cleaned["media_item_id"]
    if "rec_request_id" in cleaned:
        row["rec_request_id"] = str(cleaned["rec_request_id"])
    if ok:
        row["event_id"] = cleaned["event_id"]
        row["outcome_type"] = cleaned["outcome_type"]
        row["value"] = cleaned["value"]
        row["occurred_at"] = cleaned["occurred_at"].isoformat()
    return row if len(row) > 2 or ok else None


def _check_and_insert(user, checked: list[tuple[dict, dict]]):
    """(unknown media item ids, other users' request ids, stored event ids) for a checked
    batch, in one round trip (none when nothing is left to check or store)."""
    rows = [
        row
        for index, (cleaned, errors) in enumerate(checked)
        if (row := _batch_row(index, cleaned, not errors)) is not None
    ]
    if not rows:
        return set(), set(), set()
    with connection.cursor() as cursor:
        cursor.execute(
            CHECK_AND_INSERT,
            {"batch": json.dumps(rows, separators=(",", ":")), "user": user.pk},
        )
        unknown, foreign, stored = cursor.fetchone()
    return set(unknown), set(foreign), set(stored)


# One savepoint less per batch: nothing inside is caught, so an error rolls back the
# caller's transaction (the request's, in the API) as it would the savepoint.
@transaction.atomic(savepoint=False)
def outcomes_record(*, user, outcomes: list[dict]) -> dict:
    """Validate each outcome and store the valid ones (a repeated event_id is stored once).
    An outcome whose (request, item) was never served is stored: the health views count it.
    Runs as `user` (app.user_id set to them, e.g. through acting_as), as the API does.
    One statement whatever the batch size: the checks and the insert (CHECK_AND_INSERT)."""
    now = timezone.now()
    checked = [_check_item(index, item, now) for index, item in enumerate(outcomes)]
    unknown_items, foreign, stored = _check_and_insert(user, checked)
    for cleaned, errors in checked:
        if "media_item_id" in cleaned and cleaned["media_item_id"] in unknown_items:
            errors["media_item_id"] = "no such media item"
        if "rec_request_id" in cleaned and cleaned["rec_request_id"] in foreign:
            errors["rec_request_id"] = "belongs to another user's deck"
    # The statement stored exactly what the judge picks: the first occurrence of each
    # event_id among the items without errors.
    return _judged_batch(checked, lambda rows: stored)


# Conversions: custom events with a value (seed 002's record_conversion), batched like outcomes.
CONVERSION_FIELDS = {"event_id", "metric_name", "value", "metadata", "occurred_at"}
MAX_METADATA_BYTES = 4096
MAX_METADATA_DEPTH = 4


def metadata_reason(metadata) -> str | None:
    """Why `metadata` cannot be stored, or None: an object of at most MAX_METADATA_DEPTH
    levels, MAX_METADATA_BYTES bytes of compact JSON, with storable text only."""
    if not isinstance(metadata, dict):
        return "must be an object"
    for _, reason in json_problems(metadata, "metadata"):
        return reason
    depth, stack = 0, [(metadata, 1)]
    while stack:
        node, level = stack.pop()
        depth = max(depth, level)
        if depth > MAX_METADATA_DEPTH:
            return f"is nested too deeply: at most {MAX_METADATA_DEPTH} levels"
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    try:
        size = len(json.dumps(metadata, separators=(",", ":"), allow_nan=False).encode())
    except ValueError:
        return "must hold finite numbers only (no NaN or infinity)"
    except TypeError:  # a YAML date or another non-JSON value, from a fixture
        return "must hold JSON values only (strings, numbers, booleans, null, lists, objects)"
    if size > MAX_METADATA_BYTES:
        return f"is too large: at most {MAX_METADATA_BYTES} bytes of JSON"
    return None


def _check_conversion(index: int, item, now: datetime) -> tuple[dict, dict]:
    """(valid fields, {field: reason}) for one conversion, as _check_item does for outcomes."""
    if not isinstance(item, dict):
        return {"event_id": None}, {f"conversions[{index}]": "must be an object"}
    cleaned, errors = _event_fields(item, CONVERSION_FIELDS, "a conversion")

    metric_name = item.get("metric_name")
    if "metric_name" not in errors:
        if not isinstance(metric_name, str) or not KEY_RE.match(metric_name):
            errors["metric_name"] = (
                "required: a name of 2-63 lowercase letters, digits and _ (such as purchase)"
            )
        else:
            cleaned["metric_name"] = metric_name

    value = item.get("value")
    if not is_number(value) or not -1e300 <= value <= 1e300:
        errors["value"] = "required: a finite number"
    else:
        cleaned["value"] = float(value)

    metadata = item.get("metadata")
    reason = None if metadata is None else metadata_reason(metadata)
    if reason:
        errors["metadata"] = reason
    else:
        cleaned["metadata"] = metadata or {}

    _check_occurred_at(item, now, cleaned, errors)
    return cleaned, errors


@transaction.atomic
def conversions_record(*, user, conversions: list[dict]) -> dict:
    """Validate each conversion and store the valid ones (a repeated event_id is stored
    once), each tagged in the same statement with the user's variants in force at its
    occurred_at (rec_experiments_at). Same result shape as outcomes_record. Runs as `user`
    (app.user_id set to them) like the API, or as the service role."""
    now = timezone.now()
    checked = [_check_conversion(index, item, now) for index, item in enumerate(conversions)]
    return _judged_batch(checked, lambda rows: _insert_conversions(user, rows))


def _insert_conversions(user, conversions: list[dict]) -> set[str]:
    if not conversions:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            insert into rec_conversions (user_id, event_id, metric_name, value, metadata,
                                         occurred_at, request_context, created_at)
            select %s, c.event_id, c.metric_name, c.value, c.metadata, c.occurred_at,
                   jsonb_build_object('experiments', rec_experiments_at(%s, c.occurred_at)),
                   now()
            from unnest(%s::text[], %s::text[], %s::float8[], %s::jsonb[], %s::timestamptz[])
                 as c(event_id, metric_name, value, metadata, occurred_at)
            returning event_id
            """,
            [
                user.pk,
                user.pk,
                [c["event_id"] for c in conversions],
                [c["metric_name"] for c in conversions],
                [c["value"] for c in conversions],
                [json.dumps(c["metadata"]) for c in conversions],
                [c["occurred_at"] for c in conversions],
            ],
        )
        return {row[0] for row in cursor.fetchall()}


# App-side exposures (docs/deck.md, "App-side experiments"): the app showed the user their
# variant. The same batch rules as outcomes: each item judged alone, idempotent per user
# event_id, at most 5 minutes ahead.
EXPOSURE_FIELDS = {"event_id", "experiment_key", "variant", "occurred_at"}
MAX_VARIANT_NAME = 100


def _check_exposure(index: int, item, now: datetime) -> tuple[dict, dict]:
    """(valid fields, {field: reason}) for one exposure, without the database."""
    if not isinstance(item, dict):
        return {"event_id": None}, {f"exposures[{index}]": "must be an object"}
    cleaned, errors = _event_fields(item, EXPOSURE_FIELDS, "an exposure")

    key = item.get("experiment_key")
    if "experiment_key" not in errors:
        if isinstance(key, str) and KEY_RE.fullmatch(key):
            cleaned["experiment_key"] = key
        else:
            errors["experiment_key"] = "required: the key of an active experiment"
    variant = item.get("variant")
    if "variant" not in errors and variant is not None:
        if isinstance(variant, str) and 1 <= len(variant) <= MAX_VARIANT_NAME:
            cleaned["variant"] = variant
        else:
            errors["variant"] = f"must be a variant name (1-{MAX_VARIANT_NAME} characters)"
    _check_occurred_at(item, now, cleaned, errors)
    return cleaned, errors


def _assigned_variants(user, keys: set[str], platform, app_version) -> dict[str, tuple]:
    """{key: (experiment id, variant or None)} for the keys that are active experiments:
    each assigned through rec_assign_variant (sticky; the first call stores the hashed
    variant, as a deck or POST /assignments would). None: the user is outside its traffic,
    namespace or targeting."""
    if not keys:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            select e.key, e.id, rec_assign_variant(e.key, %s, %s, %s)
            from rec_active_experiments() as e
            where e.key = any(%s)
            order by e.key
            """,
            [user.pk, platform, app_version, sorted(keys)],
        )
        return {key: (experiment_id, variant) for key, experiment_id, variant in cursor}


def _variants_in_force(user) -> dict[str, str]:
    """{experiment key: variant}: the user's stored variants in the running experiments, the
    tag the deck puts on impressions."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            select coalesce(jsonb_object_agg(e.key, a.variant), '{}'::jsonb)
            from rec_active_experiments() as e
            join rec_user_experiment_assignments as a
              on a.experiment_id = e.id and a.user_id = %s
            """,
            [user.pk],
        )
        value = cursor.fetchone()[0]
    return json.loads(value) if isinstance(value, str) else value


@transaction.atomic
def exposures_record(
    *,
    user,
    exposures: list,
    platform: str | None = None,
    app_version: str | None = None,
) -> dict:
    """Validate each exposure and store the valid ones once per (user, event_id), shaped like
    `outcomes_record`. An exposure is valid when its experiment is active and the user is in
    it (assigned now if they were not: the app may have evaluated the manifest itself), and
    its `variant`, when given, is the user's. Each stored exposure records its experiment and
    variant and is tagged with the user's variants in force when it is recorded
    (request_context.experiments, plus platform and app_version). Runs as `user`."""
    now = timezone.now()
    checked = [_check_exposure(index, item, now) for index, item in enumerate(exposures)]
    assigned = _assigned_variants(
        user,
        {c["experiment_key"] for c, _ in checked if "experiment_key" in c},
        platform,
        app_version,
    )
    for cleaned, errors in checked:
        key = cleaned.get("experiment_key")
        if key is not None:
            experiment_id, variant = assigned.get(key, (None, None))
            if experiment_id is None:
                errors["experiment_key"] = "no active experiment has this key"
            elif variant is None:
                errors["experiment_key"] = (
                    "the user is not in this experiment (outside its traffic, namespace or "
                    "targeting)"
                )
            elif cleaned.get("variant", variant) != variant:
                errors["variant"] = "is not the user's variant in this experiment"
            else:
                cleaned["experiment_id"], cleaned["variant"] = experiment_id, variant

    def store(rows: list[dict]) -> set[str]:
        context = {
            "experiments": _variants_in_force(user) if rows else {},
            "platform": platform,
            "app_version": app_version,
        }
        return _insert_exposures(user, rows, context)

    return _judged_batch(checked, store)


def _insert_exposures(user, exposures: list[dict], context: dict) -> set[str]:
    if not exposures:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            insert into rec_exposures (event_id, user_id, experiment_id, variant,
                                       request_context, occurred_at, created_at)
            select x.event_id, %s, x.experiment_id, x.variant, %s::jsonb, x.occurred_at, now()
            from unnest(%s::text[], %s::uuid[], %s::text[], %s::timestamptz[])
                 as x(event_id, experiment_id, variant, occurred_at)
            returning event_id
            """,
            [
                user.pk,
                json.dumps(context),
                [x["event_id"] for x in exposures],
                [x["experiment_id"] for x in exposures],
                [x["variant"] for x in exposures],
                [x["occurred_at"] for x in exposures],
            ],
        )
        return {row[0] for row in cursor.fetchall()}
