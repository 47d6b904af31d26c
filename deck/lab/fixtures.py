"""Customer fixtures: a catalogue, users with segments and traits, genre preferences, CF
scores, per-segment event distributions, and history (experiments, assignments, impressions,
outcomes, conversions; deck/lab/fixture_history.py), in JSON or YAML (schema in
docs/fixtures.md).

The whole file is validated before anything is written; every problem names its path
(`users[3].segment: required`). Loading is an idempotent upsert in one transaction; `reset`
first deletes that fixture's events, users and items.

A fixture touches only its own rows: the accounts it created (marked with
`created_by_fixture`) and the catalogue items in its `<name>:` namespace. An existing account
it did not create is refused by name, never taken over, and `reset` deletes nothing else.
`load_fixture_file` also writes an evidence file (counts per table and segment, the sha256 of
the input bytes).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections import Counter
from pathlib import Path

import yaml
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from deck.lab import fixture_history as history
from deck.lab.simulation import DEFAULT_PROPENSITIES, Segment
from deck.models import CfReco, MediaItem, UserGenrePreference, UserSegment
from recsys_experiments.lib.errors import InvalidInput
from recsys_experiments.lib.experiment_rules import Problems, is_number
from recsys_experiments.lib.guardrails import OUTCOME_TYPES
from recsys_experiments.lib.text import json_problems

# libyaml's safe loader when present: five times faster on the large templates.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# \Z, not $: $ also matches before a trailing newline.
NAME_RE = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,62}\Z")
TOP_FIELDS = {"name", "catalog", "segments", "users", "cf_recos", "experiments"}
USER_FIELDS = {
    "username",
    "email",
    "segment",
    "traits",
    "genre_preferences",
    "events",
    "assignments",
}
# A fixture's accounts get ids derived from the fixture and username, so that the hashed
# (auto) variants of its users are the same in every database it is loaded into.
USER_NAMESPACE = uuid.UUID("0b6f3f52-3d0e-5a8e-8f57-6a1f7c2b9e10")


def read_fixture(path: Path) -> dict:
    return _parse_fixture(_read_bytes(path), path)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise InvalidInput({"path": [f"cannot read {path}: {error.strerror}"]}) from None


def _parse_fixture(raw: bytes, path: Path) -> dict:
    kind = path.suffix.lstrip(".") or "YAML"
    try:
        text = raw.decode("utf-8")
        # SAFE_LOADER is a safe loader (CSafeLoader or SafeLoader): no arbitrary objects.
        data = json.loads(text) if path.suffix == ".json" else yaml.load(text, SAFE_LOADER)  # noqa: S506
    except (ValueError, yaml.YAMLError) as error:
        raise InvalidInput({"file": [f"not valid {kind}: {error}"]}) from None
    if not isinstance(data, dict):
        raise InvalidInput({"file": ["must be an object with name, catalog, users, ..."]})
    return data


def _require(problems, item: dict, path: str, field: str, check, reason: str):
    if field not in item or item[field] is None:
        problems.add(f"{path}.{field}", "required")
        return None
    if not check(item[field]):
        problems.add(f"{path}.{field}", reason)
        return None
    return item[field]


def _objects(problems, data: dict, key: str) -> list[tuple[str, dict]]:
    value = data.get(key, [])
    if not isinstance(value, list):
        problems.add(key, "must be a list")
        return []
    entries = []
    for index, item in enumerate(value):
        if isinstance(item, dict):
            entries.append((f"{key}[{index}]", item))
        else:
            problems.add(f"{key}[{index}]", "must be an object")
    return entries


def validate_fixture(data: dict) -> dict:
    """The cleaned fixture, or InvalidInput naming every bad path."""
    problems = Problems()
    now = timezone.now()
    for unknown in sorted(set(data) - TOP_FIELDS, key=str):
        problems.add(str(unknown), "is not a fixture field")
    name = _require(
        problems,
        data,
        "fixture",
        "name",
        lambda v: isinstance(v, str) and NAME_RE.match(v),
        "must be a slug",
    )
    if "fixture.name" in problems.errors:
        problems.errors["name"] = problems.errors.pop("fixture.name")

    segments = {}
    for path, segment in _objects(problems, data, "segments"):
        seg_name = _require(
            problems,
            segment,
            path,
            "name",
            lambda v: isinstance(v, str) and v,
            "must be a non-empty string",
        )
        share = segment.get("share", 1)
        if not is_number(share) or share <= 0:
            problems.add(f"{path}.share", "must be a number greater than 0")
        propensities = segment.get("propensities", {})
        if not isinstance(propensities, dict):
            problems.add(f"{path}.propensities", "must be an object {outcome type: probability}")
            propensities = {}
        for kind, chance in propensities.items():
            if kind not in OUTCOME_TYPES:
                problems.add(
                    f"{path}.propensities.{kind}", f"is not an outcome type {OUTCOME_TYPES}"
                )
            elif not is_number(chance) or not 0 <= chance <= 1:
                problems.add(f"{path}.propensities.{kind}", "must be a probability from 0 to 1")
        if seg_name:
            if seg_name in segments:
                problems.add(f"{path}.name", f"duplicates segment {seg_name!r}")
            segments[seg_name] = {"name": seg_name, "share": share, "propensities": propensities}

    items = {}
    for path, item in _objects(problems, data, "catalog"):
        item_id = _require(
            problems,
            item,
            path,
            "id",
            lambda v: isinstance(v, str | int) and str(v),
            "must be a string or number",
        )
        title = _require(
            problems,
            item,
            path,
            "title",
            lambda v: isinstance(v, str) and v.strip(),
            "must be a non-empty string",
        )
        genres = _require(
            problems,
            item,
            path,
            "genres",
            lambda v: isinstance(v, list) and v and all(isinstance(g, str) and g for g in v),
            "must be a non-empty list of genre names",
        )
        year = item.get("year")
        if year is not None and (not isinstance(year, int) or not 1870 <= year <= 2100):
            problems.add(f"{path}.year", "must be a year such as 2019")
        popularity = item.get("popularity", 0)
        if not is_number(popularity) or popularity < 0:
            problems.add(f"{path}.popularity", "must be a number >= 0")
        if item_id is not None:
            if str(item_id) in items:
                problems.add(f"{path}.id", f"duplicates item {item_id!r}")
            items[str(item_id)] = {
                "title": title,
                "genres": genres,
                "year": year,
                "popularity": popularity,
            }

    experiments = history.validate_experiments(problems, data.get("experiments"), now)

    users = {}
    for path, user in _objects(problems, data, "users"):
        for unknown in sorted(set(user) - USER_FIELDS, key=str):
            problems.add(f"{path}.{unknown}", "is not a user field")
        username = _require(
            problems,
            user,
            path,
            "username",
            lambda v: isinstance(v, str) and re.fullmatch(r"[\w.@+-]{1,150}", v),
            "must be 1-150 letters, digits or @.+-_",
        )
        segment = _require(
            problems,
            user,
            path,
            "segment",
            lambda v: isinstance(v, str) and v,
            "must be a non-empty string",
        )
        if segment and segments and segment not in segments:
            problems.add(f"{path}.segment", f"{segment!r} is not a declared segment")
        traits = user.get("traits", {})
        if not isinstance(traits, dict):
            problems.add(f"{path}.traits", "must be an object")
        else:
            try:
                json.dumps(traits, allow_nan=False)
            except (TypeError, ValueError):
                problems.add(f"{path}.traits", "must hold JSON values only (quote YAML dates)")
                traits = {}
            for field, reason in json_problems(traits, f"{path}.traits"):
                problems.add(field, reason)
        preferences = user.get("genre_preferences", {})
        if not isinstance(preferences, dict) or not all(
            is_number(w) and w >= 0 for w in preferences.values()
        ):
            problems.add(f"{path}.genre_preferences", "must be an object {genre: weight >= 0}")
            preferences = {}
        email = user.get("email", "")
        if not isinstance(email, str):
            problems.add(f"{path}.email", "must be a string")
        if username:
            if username in users:
                problems.add(f"{path}.username", f"duplicates user {username!r}")
            users[username] = {
                "path": path,
                "email": email or "",
                "segment": segment,
                "traits": traits if isinstance(traits, dict) else {},
                "genre_preferences": preferences,
                "assignments": history.validate_assignments(
                    problems, path, user.get("assignments"), experiments, now
                ),
                "events": history.validate_events(
                    problems,
                    path,
                    user.get("events"),
                    items=items,
                    experiments=experiments,
                    now=now,
                ),
            }

    recos = []
    for path, reco in _objects(problems, data, "cf_recos"):
        user = _require(
            problems, reco, path, "user", lambda v: v in users, "must be a username from users"
        )
        item = _require(
            problems, reco, path, "item", lambda v: str(v) in items, "must be an id from catalog"
        )
        score = _require(problems, reco, path, "score", is_number, "must be a number")
        recos.append(
            {"user": user, "item": str(item) if item is not None else None, "score": score}
        )
    problems.raise_if_any()
    return {
        "name": name,
        "segments": segments,
        "items": items,
        "users": users,
        "cf_recos": recos,
        "experiments": experiments,
    }


def segments_from_fixture(path: Path):
    """The simulator's segments (name, share, propensities) from a fixture file."""
    fixture = validate_fixture(read_fixture(path))
    if not fixture["segments"]:
        raise InvalidInput({"segments": [f"{path} declares no segments"]})
    return [
        Segment(name, spec["share"], {**DEFAULT_PROPENSITIES, **spec["propensities"]})
        for name, spec in fixture["segments"].items()
    ]


def _reset(name: str) -> dict:
    """Delete the fixture's own rows: the events (outcomes, conversions, impressions) and
    assignments of the accounts it created, those accounts, then its items. An item that other
    users' events or scores still reference is kept (the load updates it again); deleting it
    would cascade into rows the fixture never wrote. Experiments stay (with their audit log):
    other users may be assigned to them."""
    user_ids = list(
        get_user_model().objects.filter(created_by_fixture=name).values_list("pk", flat=True)
    )
    removed = {}
    with connection.cursor() as cursor:
        for table, key in (
            ("rec_outcomes", "outcomes"),
            ("rec_conversions", "conversions"),
            ("rec_impressions", "impressions"),
            ("rec_user_experiment_assignments", "assignments"),
        ):
            # The table names are the constants above.
            query = f"delete from {table} where user_id = any(%s::uuid[])"  # noqa: S608
            cursor.execute(query, [user_ids])
            removed[key] = cursor.rowcount
    get_user_model().objects.filter(pk__in=user_ids).delete()
    own_items = MediaItem.objects.filter(external_id__startswith=f"{name}:")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            select m.id from media_items as m
            where m.id = any(%s)
              and (exists (select 1 from rec_impressions as i where i.media_item_id = m.id)
                   or exists (select 1 from rec_outcomes as o where o.media_item_id = m.id)
                   or exists (select 1 from cf_recos as c where c.media_item_id = m.id))
            """,
            [list(own_items.values_list("pk", flat=True))],
        )
        referenced = [row[0] for row in cursor.fetchall()]
    items, _ = own_items.exclude(pk__in=referenced).delete()
    return {
        **removed,
        "users": len(user_ids),
        "items": items,
        "items_kept": len(referenced),
    }


def _check_accounts(name: str, users: dict) -> None:
    """InvalidInput naming each listed account the fixture may not touch: an existing user
    it did not create, or an email that belongs to another account."""
    user_model = get_user_model()
    problems = Problems()
    existing = {u.username: u for u in user_model.objects.filter(username__in=list(users))}
    for username, spec in users.items():
        user = existing.get(username)
        if user is not None and user.created_by_fixture != name:
            problems.add(
                f"{spec['path']}.username",
                f"{username!r} is an existing account that fixture {name!r} did not create; "
                "a fixture never takes over accounts (choose another username)",
            )
    by_email = {}
    for username, spec in users.items():
        email = spec["email"].lower()
        if email and email in by_email:
            problems.add(f"{spec['path']}.email", f"duplicates the email of {by_email[email]!r}")
        elif email:
            by_email[email] = username
    holders = user_model.objects.annotate(email_ci=Lower("email")).filter(
        email_ci__in=list(by_email)
    )
    for holder in holders:
        username = by_email[holder.email.lower()]
        if holder.username != username:
            problems.add(
                f"{users[username]['path']}.email", "is already the email of another account"
            )
    problems.raise_if_any()


@transaction.atomic
def load_fixture(data: dict, *, reset: bool = False) -> dict:
    fixture = validate_fixture(data)
    name = fixture["name"]
    removed = _reset(name) if reset else None
    # After the reset, so that accounts it just removed do not count; a refusal rolls it back.
    _check_accounts(name, fixture["users"])
    tally = history.Tally()
    items = _load_items(name, fixture["items"], tally)
    people = _load_users(name, fixture["users"], tally)
    for reco in fixture["cf_recos"]:
        _, created = CfReco.objects.update_or_create(
            user=people[reco["user"]],
            media_item=items[reco["item"]],
            defaults={"score": reco["score"]},
        )
        tally.add("cf_recos", inserted=int(created), present=int(not created))
    history.load_history(
        fixture,
        people=people,
        item_ids={item_id: item.pk for item_id, item in items.items()},
        tally=tally,
    )
    segments = Counter(spec["segment"] for spec in fixture["users"].values())
    return {
        "fixture": name,
        "items": len(items),
        "users": len(people),
        "cf_recos": len(fixture["cf_recos"]),
        "segments": dict(sorted(segments.items())),
        "reset": removed,
        "tables": tally.as_dict(),
        "segment_counts": _segment_counts(fixture),
    }


def _load_items(name: str, specs: dict, tally) -> dict:
    """Upsert the catalogue (in its `<name>:` namespace) in one statement."""
    external = {item_id: f"{name}:{item_id}" for item_id in specs}
    present = set(
        MediaItem.objects.filter(external_id__in=list(external.values())).values_list(
            "external_id", flat=True
        )
    )
    fields = ["title", "genres", "year", "popularity"]
    items = MediaItem.objects.bulk_create(
        [MediaItem(external_id=external[item_id], **spec) for item_id, spec in specs.items()],
        update_conflicts=True,
        unique_fields=["external_id"],
        update_fields=fields,
    )
    tally.add("media_items", inserted=len(specs) - len(present), present=len(present))
    return dict(zip(specs, items, strict=True))


def _load_users(name: str, users: dict, tally) -> dict:
    """Create the missing accounts and upsert segments and genre preferences, in a few
    statements whatever the number of users (templates have hundreds)."""
    user_model = get_user_model()
    # _check_accounts made sure that an existing account is one this fixture created.
    people = {
        user.username: user
        for user in user_model.objects.filter(username__in=list(users), created_by_fixture=name)
    }
    created = []
    for username, spec in users.items():
        user = people.get(username)
        if user is None:
            user = user_model(
                id=fixture_user_id(name, username),
                username=username,
                email=spec["email"],
                created_by_fixture=name,
            )
            user.set_unusable_password()
            created.append(user)
            people[username] = user
        elif spec["email"] and user.email != spec["email"]:
            user.email = spec["email"]
            user.save(update_fields=["email"])
    user_model.objects.bulk_create(created)
    tally.add("accounts_user", inserted=len(created), present=len(users) - len(created))
    UserSegment.objects.bulk_create(
        [
            UserSegment(
                user=people[username], fixture=name, segment=spec["segment"], traits=spec["traits"]
            )
            for username, spec in users.items()
        ],
        update_conflicts=True,
        unique_fields=["user"],
        update_fields=["fixture", "segment", "traits"],
    )
    UserGenrePreference.objects.bulk_create(
        [
            UserGenrePreference(user=people[username], genre=genre, weight=weight)
            for username, spec in users.items()
            for genre, weight in spec["genre_preferences"].items()
        ],
        update_conflicts=True,
        unique_fields=["user", "genre"],
        update_fields=["weight"],
    )
    return {username: people[username] for username in users}


def fixture_user_id(name: str, username: str) -> uuid.UUID:
    """The id of a fixture's account: the same in every database the fixture is loaded into."""
    return uuid.uuid5(USER_NAMESPACE, f"{name}:{username}")


def _segment_counts(fixture: dict) -> dict:
    """Per segment: users, and the impressions, outcomes and conversions the file holds."""
    counts = {}
    for spec in fixture["users"].values():
        segment = counts.setdefault(
            spec["segment"], {"users": 0, "impressions": 0, "outcomes": 0, "conversions": 0}
        )
        segment["users"] += 1
        for event in spec["events"]:
            segment[f"{event['kind']}s"] += 1
    return dict(sorted(counts.items()))


def default_evidence_dir(name: str) -> Path:
    """settings.FIXTURE_EVIDENCE_ROOT (default var/evidence under the project) / <name>."""
    root = getattr(settings, "FIXTURE_EVIDENCE_ROOT", None)
    return Path(root or Path(settings.BASE_DIR) / "var" / "evidence") / name


def write_evidence(directory: Path, counts: dict, *, source: Path, sha256: str) -> Path:
    """Write the evidence of one load (a new file per load) and return its path."""
    loaded_at = timezone.now()
    evidence = {
        "fixture": counts["fixture"],
        "source": str(source),
        "loaded_at": loaded_at.isoformat(),
        "input_sha256": sha256,
        "reset": counts["reset"],
        "tables": counts["tables"],
        "segments": counts["segment_counts"],
    }
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"load-{loaded_at:%Y%m%dT%H%M%S%fZ}-{sha256[:12]}.json"
        path.write_text(json.dumps(evidence, indent=2, sort_keys=True) + "\n")
    except OSError as error:
        raise InvalidInput(
            {"evidence_dir": [f"cannot write evidence to {directory}: {error.strerror}"]}
        ) from None
    return path


def load_fixture_file(
    path: Path, *, reset: bool = False, evidence_dir: Path | None = None, evidence: bool = True
) -> dict:
    """Load a fixture file; unless `evidence` is false, also write its evidence file (into
    `evidence_dir`, default var/evidence/<name>/) and return its path as counts["evidence"]."""
    raw = _read_bytes(path)
    counts = load_fixture(_parse_fixture(raw, path), reset=reset)
    if evidence:
        sha256 = hashlib.sha256(raw).hexdigest()
        directory = evidence_dir or default_evidence_dir(counts["fixture"])
        counts["evidence"] = str(write_evidence(directory, counts, source=path, sha256=sha256))
    return counts
