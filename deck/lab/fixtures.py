"""Customer fixtures: a catalogue, users with segments and traits, genre preferences, CF
scores and per-segment event distributions, in JSON or YAML (schema in docs/fixtures.md).

The whole file is validated before anything is written; every problem names its path
(`users[3].segment: required`). Loading is an idempotent upsert in one transaction; `reset`
first deletes that fixture's events, users and items.

A fixture touches only its own rows: the accounts it created (marked with
`created_by_fixture`) and the catalogue items in its `<name>:` namespace. An existing account
it did not create is refused by name, never taken over, and `reset` deletes nothing else.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import yaml
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models.functions import Lower

from deck.lab.simulation import DEFAULT_PROPENSITIES, Segment
from deck.models import CfReco, MediaItem, UserGenrePreference, UserSegment
from recsys_experiments.lib.errors import InvalidInput
from recsys_experiments.lib.experiment_rules import Problems, is_number
from recsys_experiments.lib.guardrails import OUTCOME_TYPES

# \Z, not $: $ also matches before a trailing newline.
NAME_RE = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,62}\Z")
TOP_FIELDS = {"name", "catalog", "segments", "users", "cf_recos"}


def read_fixture(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as error:
        raise InvalidInput({"path": [f"cannot read {path}: {error.strerror}"]}) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        kind = path.suffix.lstrip(".") or "YAML"
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
    for unknown in sorted(set(data) - TOP_FIELDS):
        problems.add(unknown, "is not a fixture field")
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

    users = {}
    for path, user in _objects(problems, data, "users"):
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
    return {"name": name, "segments": segments, "items": items, "users": users, "cf_recos": recos}


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
    """Delete the fixture's own rows: the events of the accounts it created, those accounts,
    then its items. An item that other users' events or scores still reference is kept (the
    load updates it again); deleting it would cascade into rows the fixture never wrote."""
    user_ids = list(
        get_user_model().objects.filter(created_by_fixture=name).values_list("pk", flat=True)
    )
    with connection.cursor() as cursor:
        cursor.execute("delete from rec_outcomes where user_id = any(%s::uuid[])", [user_ids])
        outcomes = cursor.rowcount
        cursor.execute("delete from rec_impressions where user_id = any(%s::uuid[])", [user_ids])
        impressions = cursor.rowcount
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
        "outcomes": outcomes,
        "impressions": impressions,
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
    items = {}
    for item_id, spec in fixture["items"].items():
        item, _ = MediaItem.objects.update_or_create(external_id=f"{name}:{item_id}", defaults=spec)
        items[item_id] = item
    user_model = get_user_model()
    people = {}
    for username, spec in fixture["users"].items():
        # _check_accounts made sure that an existing account is one this fixture created.
        user = user_model.objects.filter(username=username, created_by_fixture=name).first()
        if user is None:
            user = user_model(username=username, email=spec["email"], created_by_fixture=name)
            user.set_unusable_password()
            user.save()
        elif spec["email"] and user.email != spec["email"]:
            user.email = spec["email"]
            user.save(update_fields=["email"])
        UserSegment.objects.update_or_create(
            user=user,
            defaults={"fixture": name, "segment": spec["segment"], "traits": spec["traits"]},
        )
        for genre, weight in spec["genre_preferences"].items():
            UserGenrePreference.objects.update_or_create(
                user=user, genre=genre, defaults={"weight": weight}
            )
        people[username] = user
    for reco in fixture["cf_recos"]:
        CfReco.objects.update_or_create(
            user=people[reco["user"]],
            media_item=items[reco["item"]],
            defaults={"score": reco["score"]},
        )
    segments = Counter(spec["segment"] for spec in fixture["users"].values())
    return {
        "fixture": name,
        "items": len(items),
        "users": len(people),
        "cf_recos": len(fixture["cf_recos"]),
        "segments": dict(sorted(segments.items())),
        "reset": removed,
    }


def load_fixture_file(path: Path, *, reset: bool = False) -> dict:
    return load_fixture(read_fixture(path), reset=reset)
