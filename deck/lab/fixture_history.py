"""Fixture history (docs/fixtures.md): experiments, per-user assignments and events
(impressions, outcomes, conversions).

`validate_*` check a fixture's history without the database and report every problem by path
(`users[3].events[12].occurred_at`). `load_history` writes it inside the caller's transaction
through the production paths where one exists: experiments through the experiment services,
assignments through rec_assign_variant / rec_set_user_variant (the assignment services),
outcomes through `outcomes_record` and conversions through `conversions_record` (both as the
user, under RLS). Impressions of chosen items have no production path (the deck picks its
own), so they are inserted directly, tagged like the deck tags them: an explicit
`experiments` object, else the user's assignments in force at `occurred_at`
(rec_experiments_at). Re-loading adds nothing: every write skips what is already there.
Whatever is found wrong while loading raises InvalidInput, which rolls the whole load back.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import Counter
from datetime import UTC, datetime

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from recsys_experiments.db_roles import END_USER_ROLE, acting_as
from recsys_experiments.lib.constants import KEY_RE, PLATFORMS
from recsys_experiments.lib.errors import DomainError, InvalidInput
from recsys_experiments.lib.experiment_rules import (
    DEFINITION_FIELDS,
    Problems,
    clean_definition,
    is_number,
)
from recsys_experiments.lib.text import json_problems, shown
from recsys_experiments.models import Assignment, Experiment, ExperimentPhase, ExperimentStatus
from recsys_experiments.services.assignments import assignment_assign, assignment_override
from recsys_experiments.services.experiments import experiment_activate, experiment_create
from telemetry.models import OutcomeType
from telemetry.services import (
    MAX_EVENT_ID,
    conversions_record,
    metadata_reason,
    outcomes_record,
)

# Request keys map to rec_request_ids under this namespace: uuid5(ns, "<fixture>:<user>:<key>").
REQUEST_NAMESPACE = uuid.UUID("6f1c1d2e-4b7a-5c3e-9a41-0d3c5e7f9b21")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
EXPERIMENT_EXTRA_FIELDS = {"status", "started_at", "ended_at", "created_at", "updated_at"}
EVENT_FIELDS = {
    "impression": {
        "kind",
        "request",
        "item",
        "position",
        "source",
        "occurred_at",
        "platform",
        "app_version",
        "experiments",
    },
    "outcome": {"kind", "event_id", "request", "item", "outcome_type", "value", "occurred_at"},
    "conversion": {"kind", "event_id", "metric_name", "value", "metadata", "occurred_at"},
}
ASSIGNMENT_FIELDS = {"experiment", "mode", "variant", "assigned_at", "platform", "app_version"}
MAX_TEXT = 128


def request_uuid(fixture: str, username: str, request: str) -> uuid.UUID:
    """The deterministic rec_request_id of a user's request key."""
    return uuid.uuid5(REQUEST_NAMESPACE, f"{fixture}:{username}:{request}")


def parse_time(problems: Problems, path: str, raw, now: datetime, *, required=True):
    """A past timestamp from ISO 8601 text, or None after adding the problem at `path`."""
    if raw is None:
        if required:
            problems.add(path, "required: an ISO 8601 timestamp")
        return None
    if not isinstance(raw, str):
        # YAML reads an unquoted timestamp as a datetime: accept it like its text.
        if isinstance(raw, datetime):
            parsed = raw
        else:
            problems.add(path, "must be an ISO 8601 timestamp")
            return None
    else:
        try:
            parsed = parse_datetime(raw)
        except (ValueError, OverflowError):
            problems.add(path, "must be an ISO 8601 timestamp of a real date and time")
            return None
        if parsed is None:
            problems.add(path, "must be an ISO 8601 timestamp")
            return None
    try:
        parsed = parsed.replace(tzinfo=UTC) if timezone.is_naive(parsed) else parsed
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        problems.add(path, "is out of range")
        return None
    if parsed < EARLIEST:
        problems.add(path, "is before 1970-01-01")
        return None
    if parsed > now:
        problems.add(path, "is in the future")
        return None
    return parsed


def _text(problems, path, value, *, required=True, limit=MAX_TEXT):
    if value is None:
        if required:
            problems.add(path, f"required: a string of 1-{limit} characters")
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        problems.add(path, f"must be a string of 1-{limit} characters")
        return None
    return value


def validate_experiments(problems: Problems, raw, now: datetime) -> dict[str, dict]:
    """{key: {"definition", "status", "started_at", "path"}} of the top-level experiments[]."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        problems.add("experiments", "must be a list of experiments")
        return {}
    experiments = {}
    for index, entry in enumerate(raw):
        path = f"experiments[{index}]"
        if not isinstance(entry, dict):
            problems.add(path, "must be an object (an experiment as `experiments show --json`)")
            continue
        for unknown in sorted(
            set(entry) - set(DEFINITION_FIELDS) - EXPERIMENT_EXTRA_FIELDS, key=str
        ):
            problems.add(f"{path}.{shown(unknown)}", "is not an experiment field")
        try:
            definition = clean_definition(
                {k: v for k, v in entry.items() if k in DEFINITION_FIELDS}
            )
        except InvalidInput as error:
            for field, reasons in error.errors.items():
                for reason in reasons:
                    problems.add(f"{path}.{field}", reason)
            continue
        status = entry.get("status", ExperimentStatus.DRAFT)
        if status not in (ExperimentStatus.DRAFT, ExperimentStatus.ACTIVE):
            problems.add(f"{path}.status", "must be draft or active")
        if entry.get("ended_at") is not None:
            problems.add(
                f"{path}.ended_at", "must be null: a fixture loads draft or active experiments"
            )
        started_at = parse_time(
            problems, f"{path}.started_at", entry.get("started_at"), now, required=False
        )
        if started_at and status != ExperimentStatus.ACTIVE:
            problems.add(f"{path}.started_at", "only an active experiment has a start")
        key = definition["key"]
        if key in experiments:
            problems.add(f"{path}.key", f"duplicates experiment {key!r}")
        experiments[key] = {
            "definition": definition,
            "status": status,
            "started_at": started_at,
            "path": path,
        }
    return experiments


def validate_assignments(problems, path, raw, experiments: dict, now) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.add(f"{path}.assignments", "must be a list")
        return []
    cleaned, seen = [], set()
    for index, entry in enumerate(raw):
        where = f"{path}.assignments[{index}]"
        if not isinstance(entry, dict):
            problems.add(where, "must be an object")
            continue
        for unknown in sorted(set(entry) - ASSIGNMENT_FIELDS, key=str):
            problems.add(f"{where}.{shown(unknown)}", "is not an assignment field")
        for field, reason in json_problems(entry, where):
            problems.add(field, reason)
        key = entry.get("experiment")
        if not isinstance(key, str) or not KEY_RE.match(key):
            problems.add(f"{where}.experiment", "required: an experiment key")
            key = None
        elif key in seen:
            problems.add(f"{where}.experiment", f"the user already has an assignment in {key!r}")
        seen.add(key)
        mode = entry.get("mode", "auto")
        if mode not in ("auto", "manual"):
            problems.add(f"{where}.mode", "must be auto or manual")
        variant = entry.get("variant")
        if variant is not None and not isinstance(variant, str):
            problems.add(f"{where}.variant", "must be a variant name")
            variant = None
        if mode == "manual" and variant is None:
            problems.add(f"{where}.variant", "required for a manual assignment")
        if variant is not None and key in experiments:
            names = [v["name"] for v in experiments[key]["definition"]["variants"]]
            if variant not in names:
                problems.add(f"{where}.variant", f"{shown(variant)!r} is not a variant of {key!r}")
        platform = entry.get("platform")
        if platform is not None and platform not in PLATFORMS:
            problems.add(f"{where}.platform", f"must be one of {', '.join(PLATFORMS)}")
        app_version = _text(
            problems, f"{where}.app_version", entry.get("app_version"), required=False, limit=32
        )
        assigned_at = parse_time(problems, f"{where}.assigned_at", entry.get("assigned_at"), now)
        cleaned.append(
            {
                "path": where,
                "experiment": key,
                "mode": mode,
                "variant": variant,
                "assigned_at": assigned_at,
                "platform": platform,
                "app_version": app_version,
            }
        )
    return cleaned


def _event_time(problems, where, event, now):
    return parse_time(problems, f"{where}.occurred_at", event.get("occurred_at"), now)


def validate_events(problems, path, raw, *, items: dict, experiments: dict, now) -> list[dict]:
    """One user's events, checked alone and against each other: a request key groups the
    impressions of one deck, and an outcome must answer an item the user was served."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.add(f"{path}.events", "must be a list")
        return []
    cleaned, event_ids, served, positions = [], {}, {}, set()
    for index, event in enumerate(raw):
        where = f"{path}.events[{index}]"
        if not isinstance(event, dict):
            problems.add(where, "must be an object")
            continue
        kind = event.get("kind")
        if kind not in EVENT_FIELDS:
            problems.add(f"{where}.kind", "required: impression, outcome or conversion")
            continue
        for unknown in sorted(set(event) - EVENT_FIELDS[kind], key=str):
            problems.add(f"{where}.{shown(unknown)}", f"is not a field of an {kind} event")
        bad = {field for field, _ in json_problems(event, where)}
        for field, reason in json_problems(event, where):
            problems.add(field, reason)
        if bad:
            continue
        entry = {
            "path": where,
            "kind": kind,
            "occurred_at": _event_time(problems, where, event, now),
        }
        if kind in ("outcome", "conversion"):
            event_id = event.get("event_id")
            if not isinstance(event_id, str) or not 1 <= len(event_id) <= MAX_EVENT_ID:
                problems.add(
                    f"{where}.event_id", f"required: a string of 1-{MAX_EVENT_ID} characters"
                )
            elif event_id in event_ids:
                problems.add(
                    f"{where}.event_id", f"duplicates the event id of {event_ids[event_id]}"
                )
            else:
                event_ids[event_id] = where
            entry["event_id"] = event_id
        if kind in ("impression", "outcome"):
            entry["request"] = _text(problems, f"{where}.request", event.get("request"))
            item = event.get("item")
            if not isinstance(item, str | int) or isinstance(item, bool) or str(item) not in items:
                problems.add(f"{where}.item", "required: an id from catalog")
                item = None
            entry["item"] = None if item is None else str(item)
        if kind == "impression":
            position = event.get("position")
            if (
                not isinstance(position, int)
                or isinstance(position, bool)
                or not 1 <= position <= 50
            ):
                problems.add(f"{where}.position", "required: an integer from 1 to 50")
            entry["position"] = position
            entry["source"] = _text(problems, f"{where}.source", event.get("source"), limit=32)
            platform = event.get("platform")
            if platform is not None and platform not in PLATFORMS:
                problems.add(f"{where}.platform", f"must be one of {', '.join(PLATFORMS)}")
            entry["platform"] = platform
            entry["app_version"] = _text(
                problems, f"{where}.app_version", event.get("app_version"), required=False, limit=32
            )
            tag = event.get("experiments")
            if tag is not None:
                if not isinstance(tag, dict) or not all(isinstance(v, str) for v in tag.values()):
                    problems.add(
                        f"{where}.experiments", "must be an object {experiment key: variant}"
                    )
                    tag = None
                else:
                    for key, variant in tag.items():
                        spec = experiments.get(key)
                        if spec is None and not (isinstance(key, str) and KEY_RE.match(key)):
                            problems.add(
                                f"{where}.experiments.{shown(key)}", "is not an experiment key"
                            )
                        elif spec is not None and variant not in [
                            v["name"] for v in spec["definition"]["variants"]
                        ]:
                            problems.add(
                                f"{where}.experiments.{key}",
                                f"{shown(variant)!r} is not a variant of {key!r}",
                            )
            entry["experiments"] = tag
            if entry["request"] and entry["item"]:
                pair = (entry["request"], entry["item"])
                if pair in served:
                    problems.add(
                        f"{where}.item",
                        f"is already in request {entry['request']!r} ({served[pair]['path']})",
                    )
                else:
                    served[pair] = entry
                if isinstance(position, int) and (entry["request"], position) in positions:
                    problems.add(
                        f"{where}.position", f"is already taken in request {entry['request']!r}"
                    )
                positions.add((entry["request"], position))
        elif kind == "outcome":
            outcome_type, value = event.get("outcome_type"), event.get("value")
            if outcome_type not in OutcomeType.values:
                problems.add(
                    f"{where}.outcome_type", f"required: one of {', '.join(OutcomeType.values)}"
                )
            elif outcome_type == OutcomeType.RATING:
                if not (is_number(value) and 0.5 <= value <= 5 and float(value * 2).is_integer()):
                    problems.add(
                        f"{where}.value", "a rating needs a value from 0.5 to 5 in steps of 0.5"
                    )
            elif value is not None:
                problems.add(f"{where}.value", f"a {outcome_type} outcome takes no value")
            entry.update(outcome_type=outcome_type, value=value)
        else:
            metric_name = event.get("metric_name")
            if not isinstance(metric_name, str) or not KEY_RE.match(metric_name):
                problems.add(
                    f"{where}.metric_name", "required: 2-63 lowercase letters, digits and _"
                )
            value = event.get("value")
            if not is_number(value) or not math.isfinite(float(value)):
                problems.add(f"{where}.value", "required: a finite number")
            metadata = event.get("metadata")
            reason = None if metadata is None else metadata_reason(metadata)
            if reason:
                problems.add(f"{where}.metadata", reason)
            entry.update(metric_name=metric_name, value=value, metadata=metadata)
        cleaned.append(entry)
    # Outcomes answer a served item: the request key and the item must match an impression.
    requests = {request for request, _ in served}
    for entry in cleaned:
        if entry["kind"] != "outcome" or not entry["request"] or not entry["item"]:
            continue
        impression = served.get((entry["request"], entry["item"]))
        if entry["request"] not in requests:
            problems.add(
                f"{entry['path']}.request", f"{entry['request']!r} was not served to this user"
            )
        elif impression is None:
            problems.add(f"{entry['path']}.item", f"was not served in request {entry['request']!r}")
        elif (
            entry["occurred_at"]
            and impression["occurred_at"]
            and entry["occurred_at"] < impression["occurred_at"]
        ):
            problems.add(
                f"{entry['path']}.occurred_at",
                f"is before the impression it answers ({impression['path']})",
            )
    return cleaned


def experiment_references(fixture: dict) -> dict[str, str]:
    """{experiment key: first path naming it} for keys the fixture uses but does not define."""
    references = {}
    for spec in fixture["users"].values():
        for assignment in spec["assignments"]:
            key = assignment["experiment"]
            if key and key not in fixture["experiments"]:
                references.setdefault(key, f"{assignment['path']}.experiment")
        for event in spec["events"]:
            for key in event.get("experiments") or {}:
                if key not in fixture["experiments"]:
                    references.setdefault(key, f"{event['path']}.experiments.{shown(key)}")
    return references


class Tally:
    """Rows per table: inserted by this load, or already present."""

    def __init__(self):
        self.counts: dict[str, Counter] = {}

    def add(self, table: str, *, inserted: int = 0, present: int = 0) -> None:
        counter = self.counts.setdefault(table, Counter(inserted=0, already_present=0))
        counter["inserted"] += inserted
        counter["already_present"] += present

    def as_dict(self) -> dict:
        return {table: dict(counter) for table, counter in sorted(self.counts.items())}


def _load_experiments(fixture: dict, tally: Tally, source: str) -> dict[str, Experiment]:
    loaded = {}
    for key, spec in fixture["experiments"].items():
        experiment = Experiment.objects.filter(key=key).first()
        if experiment is None:
            experiment = experiment_create(data=spec["definition"], actor=None, source=source)
            tally.add("rec_experiments", inserted=1)
        else:
            tally.add("rec_experiments", present=1)
        if (
            spec["status"] == ExperimentStatus.ACTIVE
            and experiment.status == ExperimentStatus.DRAFT
        ):
            experiment = experiment_activate(experiment=experiment, actor=None, source=source)
            if spec["started_at"]:
                # History before the load: the experiment (and its first phase) ran from then.
                Experiment.objects.filter(pk=experiment.pk).update(started_at=spec["started_at"])
                ExperimentPhase.objects.filter(experiment=experiment, number=1).update(
                    started_at=spec["started_at"]
                )
        elif (
            spec["status"] == ExperimentStatus.ACTIVE
            and experiment.status != ExperimentStatus.ACTIVE
        ):
            raise InvalidInput(
                {f"{spec['path']}.status": [f"experiment {key!r} is {experiment.status}"]}
            )
        loaded[key] = experiment
    return loaded


def _load_assignments(fixture, people, experiments, tally, source) -> None:
    problems = Problems()
    for username, spec in fixture["users"].items():
        user = people[username]
        for entry in spec["assignments"]:
            experiment = experiments[entry["experiment"]]
            where = entry["path"]
            existing = Assignment.objects.filter(experiment=experiment, user=user).first()
            if existing is not None:
                if entry["variant"] and existing.variant != entry["variant"]:
                    problems.add(
                        f"{where}.variant",
                        f"the user is already assigned {existing.variant!r} in {experiment.key!r}",
                    )
                tally.add("rec_user_experiment_assignments", present=1)
                continue
            if entry["mode"] == "manual":
                try:
                    assignment_override(
                        experiment=experiment,
                        user=user,
                        variant=entry["variant"],
                        actor=None,
                        source=source,
                    )
                except DomainError as error:
                    problems.add(f"{where}.variant", error.message)
                    continue
            else:
                variant = assignment_assign(
                    experiment_key=experiment.key,
                    user=user,
                    platform=entry["platform"],
                    app_version=entry["app_version"],
                )
                if variant is None:
                    problems.add(
                        f"{where}.experiment",
                        f"{experiment.key!r} does not enrol this user (not active, or the user "
                        "is outside its traffic, namespace or targeting)",
                    )
                    continue
                if entry["variant"] and variant != entry["variant"]:
                    problems.add(
                        f"{where}.variant",
                        f"the hash assigns {variant!r}, not {entry['variant']!r} "
                        "(omit variant for auto, or use mode: manual)",
                    )
                    continue
            Assignment.objects.filter(experiment=experiment, user=user).update(
                assigned_at=entry["assigned_at"]
            )
            tally.add("rec_user_experiment_assignments", inserted=1)
    problems.raise_if_any()


def _load_impressions(fixture, people, item_ids, tally) -> None:
    rows = []
    for username, spec in fixture["users"].items():
        for event in spec["events"]:
            if event["kind"] != "impression":
                continue
            rows.append(
                (
                    people[username].pk,
                    request_uuid(fixture["name"], username, event["request"]),
                    item_ids[event["item"]],
                    event["position"],
                    event["source"],
                    event["occurred_at"],
                    event["platform"],
                    event["app_version"],
                    None if event["experiments"] is None else _json(event["experiments"]),
                )
            )
    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            """
            insert into rec_impressions
                (user_id, rec_request_id, media_item_id, position, source, request_context,
                 created_at)
            select i.user_id, i.request_id, i.item_id, i.position, i.source,
                   jsonb_build_object(
                       'experiments',
                       coalesce(i.experiments, rec_experiments_at(i.user_id, i.occurred_at)),
                       'platform', i.platform, 'app_version', i.app_version
                   ),
                   i.occurred_at
            from unnest(%s::uuid[], %s::uuid[], %s::bigint[], %s::int[], %s::text[],
                        %s::timestamptz[], %s::text[], %s::text[], %s::jsonb[])
                 as i(user_id, request_id, item_id, position, source, occurred_at, platform,
                      app_version, experiments)
            where not exists (
                select 1 from rec_impressions as x
                where x.rec_request_id = i.request_id and x.media_item_id = i.item_id
                  and x.user_id = i.user_id
            )
            """,
            [list(column) for column in columns],
        )
        inserted = cursor.rowcount
    tally.add("rec_impressions", inserted=inserted, present=len(rows) - inserted)


def _json(value) -> str:
    return json.dumps(value)


def _load_through_service(fixture, people, item_ids, tally, kind) -> None:
    """Outcomes or conversions, per user, through their production service as that user."""
    problems = Problems()
    table = "rec_outcomes" if kind == "outcome" else "rec_conversions"
    for username, spec in fixture["users"].items():
        events = [event for event in spec["events"] if event["kind"] == kind]
        if not events:
            continue
        user = people[username]
        if kind == "outcome":
            batch = [
                {
                    "event_id": e["event_id"],
                    "rec_request_id": str(request_uuid(fixture["name"], username, e["request"])),
                    "media_item_id": item_ids[e["item"]],
                    "outcome_type": e["outcome_type"],
                    "value": e["value"],
                    "occurred_at": e["occurred_at"].isoformat(),
                }
                for e in events
            ]
        else:
            batch = [
                {
                    "event_id": e["event_id"],
                    "metric_name": e["metric_name"],
                    "value": e["value"],
                    "metadata": e["metadata"],
                    "occurred_at": e["occurred_at"].isoformat(),
                }
                for e in events
            ]
        with acting_as(END_USER_ROLE, user.pk):
            result = (outcomes_record if kind == "outcome" else conversions_record)(
                user=user, **{f"{kind}s": batch}
            )
        for entry in result["results"]:
            path = events[entry["index"]]["path"]
            for field, reason in entry.get("errors", {}).items():
                problems.add(f"{path}.{field}", reason)
        tally.add(table, inserted=result["accepted"], present=result["duplicate"])
    problems.raise_if_any()


def load_history(fixture: dict, *, people: dict, item_ids: dict, tally: Tally) -> None:
    """Write the fixture's experiments, assignments and events (inside the caller's atomic
    block; InvalidInput rolls everything back)."""
    source = f"fixture:{fixture['name']}"
    experiments = _load_experiments(fixture, tally, source)
    missing = Problems()
    for key, path in experiment_references(fixture).items():
        experiment = Experiment.objects.filter(key=key).first()
        if experiment is None:
            missing.add(path, f"{key!r} is neither in experiments[] nor an existing experiment")
        else:
            experiments[key] = experiment
    missing.raise_if_any()
    _load_assignments(fixture, people, experiments, tally, source)
    _load_impressions(fixture, people, item_ids, tally)
    _load_through_service(fixture, people, item_ids, tally, "outcome")
    _load_through_service(fixture, people, item_ids, tally, "conversion")
