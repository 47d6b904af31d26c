"""Validation of an experiment's definition: pure, no ORM, shared by every edge.

Every function takes raw (JSON-decoded) input and returns a cleaned value or records the
problems under a field path. `clean_definition` collects all problems before raising, so one
bad request reports every bad field at once.

Every input is bounded (lengths, counts, JSON depth), and a string the database cannot store
(a NUL, a lone surrogate) is refused with its path, so no definition that passes here can
make the database fail. The patterns are anchored with \\A and \\Z: `$` would also match
before a trailing newline ("abc\\n"), which the database CHECK then refuses.
"""

from __future__ import annotations

import math
import re
import secrets
from datetime import datetime
from typing import Any

from .constants import ACTIVE, ENDED, KEY_RE, PLATFORMS, SALT_RE
from .errors import IllegalTransition, InvalidInput
from .guardrails import check_guardrail
from .hashing import normalise_weights
from .knobs import check_config
from .targeting import APP_VERSION_PATTERN, app_version_key
from .text import json_problems, path_part

VARIANT_NAME_RE = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")
NAMESPACE_NAME_RE = re.compile(r"\A[a-z0-9][a-z0-9_]{0,62}\Z")
# The database holds the same bounds as CHECK constraints (migration 0005).
MAX_DESCRIPTION_LENGTH = 2000
MAX_VARIANTS = 20
MAX_GUARDRAILS = 20
# One bad request reports at most this many fields (a body with a million unknown keys
# gets a short answer, not a million-line one).
MAX_REPORTED_FIELDS = 50
VARIANT_FIELDS = {"name", "weight", "config"}
TARGETING_FIELDS = {"platform", "min_app_version", "max_app_version"}
NAMESPACE_FIELDS = {"name", "start", "end"}
DEFINITION_FIELDS = (
    "key", "description", "variants", "salt", "traffic", "namespace", "targeting", "guardrails",
    "sequential_testing",
)  # fmt: skip
# The schedule: writable beside the definition (omitted = unchanged, null = cleared), checked
# against the status and the clock by `check_schedule`.
SCHEDULE_FIELDS = ("started_at", "ended_at")
MAX_TIMESTAMP_LENGTH = 64
TIMESTAMP_EXAMPLE = "2026-12-01T09:00:00+00:00"
# A weight this small next to the total would be stored as 0 (never assigned).
MIN_WEIGHT_SHARE = 1e-9


class Problems:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}
        self.not_shown = 0

    def add(self, field: str, reason: str) -> None:
        if field not in self.errors and len(self.errors) >= MAX_REPORTED_FIELDS:
            self.not_shown += 1
            return
        self.errors.setdefault(field, []).append(reason)

    def raise_if_any(self) -> None:
        if self.not_shown:
            self.errors.setdefault("body", []).append(
                f"and {self.not_shown} more problems not listed"
            )
        if self.errors:
            raise InvalidInput(self.errors)


def is_number(value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def generate_salt() -> str:
    return secrets.token_hex(8)


def clean_key(value: Any, problems: Problems) -> str | None:
    if not isinstance(value, str) or not KEY_RE.fullmatch(value):
        problems.add(
            "key",
            "must be 2-63 characters of lower-case letters, digits and underscores, "
            "starting with a letter or digit",
        )
        return None
    return value


def clean_description(value: Any, problems: Problems) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.add("description", "must be a string")
        return ""
    if len(value) > MAX_DESCRIPTION_LENGTH:
        problems.add(
            "description",
            f"must be at most {MAX_DESCRIPTION_LENGTH} characters (this one has {len(value)})",
        )
    return value


def clean_salt(value: Any, problems: Problems) -> str | None:
    if value is None or value == "":
        return generate_salt()
    if not isinstance(value, str) or not SALT_RE.fullmatch(value):
        problems.add("salt", "must be 1-64 printable ASCII characters without spaces")
        return None
    return value


def clean_traffic(value: Any, problems: Problems) -> float | None:
    if value is None:
        return 1.0
    if not is_number(value) or not 0 <= value <= 1:
        problems.add("traffic", "must be a number from 0 to 1")
        return None
    return float(value)


def clean_variants(value: Any, problems: Problems) -> list[dict] | None:
    """At least two variants with unique names, weights > 0 (any positive numbers: 70/30,
    1/1/2, percentages), stored normalised to sum 1 (a vector already summing to 1 within
    1e-9 is kept as is), and a config object whose keys are ranking knobs (`lib/knobs.py`)."""
    if not isinstance(value, list) or not 2 <= len(value) <= MAX_VARIANTS:
        problems.add("variants", f"must be a list of 2 to {MAX_VARIANTS} variants")
        return None
    cleaned, seen, valid = [], set(), True
    for index, variant in enumerate(value):
        path = f"variants[{index}]"
        if not isinstance(variant, dict):
            problems.add(path, "must be an object with name, weight and config")
            valid = False
            continue
        for unknown in sorted(set(variant) - VARIANT_FIELDS):
            problems.add(
                f"{path}.{path_part(unknown)}", "is not a variant field (name, weight, config)"
            )
            valid = False
        name, weight = variant.get("name"), variant.get("weight")
        config = variant.get("config", {})
        if not isinstance(name, str) or not VARIANT_NAME_RE.fullmatch(name):
            problems.add(f"{path}.name", "must be 1-64 letters, digits, '_' or '-'")
            valid = False
        elif name in seen:
            problems.add(f"{path}.name", f"duplicates the variant name '{name}'")
            valid = False
        else:
            seen.add(name)
        if not is_number(weight) or weight <= 0:
            problems.add(f"{path}.weight", "must be a number greater than 0")
            valid = False
        if not isinstance(config, dict):
            problems.add(f"{path}.config", "must be a JSON object")
            valid = False
        else:
            for field, reason in check_config(config):
                problems.add(f"{path}.config.{path_part(field)}", reason)
                valid = False
        cleaned.append({"name": name, "weight": weight, "config": config})
    if not valid:
        return None
    total = sum(float(variant["weight"]) for variant in cleaned)
    if not math.isfinite(total):
        problems.add("variants", "weights are too large to add up; use percentages")
        return None
    weights = normalise_weights([float(variant["weight"]) for variant in cleaned])
    for index, weight in enumerate(weights):
        if weight < MIN_WEIGHT_SHARE:
            problems.add(f"variants[{index}].weight", "is too small next to the other weights")
            valid = False
    if not valid:
        return None
    return [{**variant, "weight": weight} for variant, weight in zip(cleaned, weights, strict=True)]


def parse_timestamp(value: Any) -> datetime | None:
    """An aware datetime from an ISO 8601 string with a timezone (or an aware datetime), else
    None. Impossible dates (Feb 30, hour 25) are None too."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None and value.utcoffset() is not None else None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TIMESTAMP_LENGTH:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None and parsed.utcoffset() is not None else None


def clean_schedule(data: dict, problems: Problems) -> dict:
    """The schedule fields present in `data`, parsed: {field: aware datetime or None}."""
    cleaned = {}
    for field in SCHEDULE_FIELDS:
        if field not in data:
            continue
        value = data[field]
        if value is None or value == "":
            cleaned[field] = None
            continue
        parsed = parse_timestamp(value)
        if parsed is None:
            problems.add(
                field,
                "must be an ISO 8601 timestamp with a timezone, such as "
                f"{TIMESTAMP_EXAMPLE}, or null",
            )
        else:
            cleaned[field] = parsed
    return cleaned


def check_schedule(*, status: str, current: dict, schedule: dict, now: datetime) -> dict:
    """The schedule fields `schedule` (from `clean_schedule`) changes, checked against the
    experiment's status and `now`: `started_at` of a draft is its scheduled start, `ended_at`
    of a draft or an active experiment its scheduled end. A new time must not be in the past;
    the end must come after the start; an active experiment's start and an ended one's dates
    are fixed. `current`: the stored {started_at, ended_at}."""
    changed = {field: value for field, value in schedule.items() if value != current.get(field)}
    if not changed:
        return {}
    if status == ENDED:
        raise IllegalTransition("the dates of an ended experiment are final")
    if status == ACTIVE and "started_at" in changed:
        raise IllegalTransition(
            "the start of an active experiment is fixed (a scheduled end may change)"
        )
    problems = Problems()
    for field, value in changed.items():
        if value is not None and value < now:
            what = "start" if field == "started_at" else "end"
            problems.add(
                field, f"a scheduled {what} must not be in the past (now is {now.isoformat()})"
            )
    merged = {**current, **changed}
    start, end = merged.get("started_at"), merged.get("ended_at")
    if start is not None and end is not None and not end > start:
        problems.add("ended_at", "must be after started_at")
    problems.raise_if_any()
    return changed


def clean_namespace(value: Any, problems: Problems) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.add("namespace", "must be an object {name, start, end} or null")
        return None
    for unknown in sorted(set(value) - NAMESPACE_FIELDS):
        problems.add(
            f"namespace.{path_part(unknown)}", "is not a namespace field (name, start, end)"
        )
    name, start, end = value.get("name"), value.get("start"), value.get("end")
    ok = True
    if not isinstance(name, str) or not NAMESPACE_NAME_RE.fullmatch(name):
        problems.add("namespace.name", "must be 1-63 lower-case letters, digits or underscores")
        ok = False
    for field, bound in (("start", start), ("end", end)):
        if not is_number(bound) or not 0 <= bound <= 1:
            problems.add(f"namespace.{field}", "must be a number from 0 to 1")
            ok = False
    if ok and not start < end:
        problems.add("namespace", "start must be less than end")
        ok = False
    return {"name": name, "start": float(start), "end": float(end)} if ok else None


def clean_targeting(value: Any, problems: Problems) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(
            "targeting", "must be an object {platform?, min_app_version?, max_app_version?}"
        )
        return {}
    for unknown in sorted(set(value) - TARGETING_FIELDS):
        problems.add(f"targeting.{path_part(unknown)}", "is not a targeting rule")
    cleaned = {}
    platform = value.get("platform")
    if platform is not None:
        if platform not in PLATFORMS:
            problems.add("targeting.platform", f"must be one of {', '.join(PLATFORMS)}")
        else:
            cleaned["platform"] = platform
    for field in ("min_app_version", "max_app_version"):
        version = value.get(field)
        if version is None:
            continue
        if not isinstance(version, str) or not APP_VERSION_PATTERN.fullmatch(version):
            problems.add(f"targeting.{field}", "must be dotted digits such as 1.4 or 2.10.3")
        else:
            cleaned[field] = version
    low, high = cleaned.get("min_app_version"), cleaned.get("max_app_version")
    if low and high and app_version_key(low) > app_version_key(high):
        problems.add("targeting", "min_app_version must not be above max_app_version")
    return cleaned


def clean_guardrails(value: Any, problems: Problems) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_GUARDRAILS:
        problems.add("guardrails", f"must be a list of at most {MAX_GUARDRAILS} guardrails")
        return []
    cleaned = []
    for index, guardrail in enumerate(value):
        for field, reason in check_guardrail(guardrail):
            problems.add(f"guardrails[{index}]{'.' + field if field else ''}", reason)
        cleaned.append(guardrail)
    return cleaned


def clean_sequential_testing(value: Any, problems: Problems) -> bool:
    """Always-valid (true, the default) or fixed-horizon (false) inference in the results."""
    if value is None:
        return True
    if not isinstance(value, bool):
        problems.add("sequential_testing", "must be true or false")
        return True
    return value


def clean_definition(data: dict, *, partial_of: dict | None = None) -> dict:
    """Clean a whole definition. With `partial_of` (the current definition), only the fields
    present in `data` are checked and the rest are taken from it."""
    problems = Problems()
    if not isinstance(data, dict):
        raise InvalidInput({"body": ["must be a JSON object"]})
    for unknown in sorted(set(data) - set(DEFINITION_FIELDS) - set(SCHEDULE_FIELDS), key=str):
        problems.add(path_part(unknown), "is not an experiment field")
    merged = {**(partial_of or {}), **data}
    # A field holding text the database cannot store (or absurdly nested JSON) is reported
    # by path and not cleaned further: its other reasons would only repeat the problem.
    unstorable = set()
    for field in DEFINITION_FIELDS:
        for path, reason in json_problems(merged.get(field), field):
            problems.add(path, reason)
            unstorable.add(field)
    cleaned = {
        field: None if field in unstorable else clean(merged.get(field), problems)
        for field, clean in CLEANERS.items()
    }
    # Only the schedule fields `data` gives (a PUT without them leaves the schedule alone).
    cleaned.update(clean_schedule(data, problems))
    problems.raise_if_any()
    return cleaned


def clean_edit(data: Any, *, current: dict, partial: bool) -> dict:
    """Clean an edit of the definition `current`. A full edit (PUT) needs every required
    field and keeps the current salt when it gives none; a partial one (PATCH) only the
    fields it changes. The status is not a definition field: it changes only through the
    lifecycle (activate, end)."""
    if isinstance(data, dict) and "status" in data:
        raise InvalidInput({"status": ["changes only through activate and end"]})
    definition = clean_definition(data, partial_of=current if partial else None)
    if not partial and not data.get("salt"):
        definition["salt"] = current["salt"]  # a PUT without a salt keeps it
    return definition


def check_edit_allowed(*, status: str, current: dict, definition: dict) -> set[str]:
    """The fields `definition` changes in `current` (an experiment's definition), or
    IllegalTransition when the experiment's status forbids changing them: ended experiments
    take description edits only; an active one keeps its key, salt (rotate-salt changes it)
    and variant names."""
    changed = {
        field
        for field, value in definition.items()
        if field in DEFINITION_FIELDS and value != current[field]
    }
    key = current["key"]
    if status == ENDED and changed - {"description"}:
        raise IllegalTransition(
            f'experiment "{key}" has ended: only its description can change '
            "(duplicate it to run again)"
        )
    if status == ACTIVE:
        if "key" in changed:
            raise IllegalTransition(f'the key of active experiment "{key}" is fixed')
        if "salt" in changed:
            raise IllegalTransition("the salt of an active experiment changes only by rotate-salt")
        new_names = [variant["name"] for variant in definition["variants"]]
        if new_names != [variant["name"] for variant in current["variants"]]:
            raise IllegalTransition(
                "variant names of an active experiment are fixed (weights and config may change)"
            )
    return changed


CLEANERS = {
    "key": clean_key,
    "description": clean_description,
    "variants": clean_variants,
    "salt": clean_salt,
    "traffic": clean_traffic,
    "namespace": clean_namespace,
    "targeting": clean_targeting,
    "guardrails": clean_guardrails,
    "sequential_testing": clean_sequential_testing,
}
