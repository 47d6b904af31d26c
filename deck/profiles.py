"""Ranking profiles: named, versioned sets of ranking knobs bound to namespaces or segments
(docs/deck.md, "Ranking profiles").

Every write goes through `ranking_profile_save` (the admin, `ranking_profile_install` for the
lab): validation with errors naming the field, the default switch, and one transaction in
which the database triggers (deck/sql/profiles.v1.sql) bump the version, write the history
row and refresh the binding index whose unique (kind, value) keeps a binding on one profile.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction

from recsys_experiments.lib.errors import IllegalTransition, InvalidInput, NotFound
from recsys_experiments.lib.knobs import check_config
from recsys_experiments.lib.text import path_part, shown, unstorable_text_reason

from .models import BINDING_KINDS, RankingProfile, RankingProfileBinding

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_BINDINGS = 200
MAX_BINDING_VALUE = 200
DEFINITION_FIELDS = ("name", "knobs", "bindings")


def binding_key(binding: dict[str, str]) -> tuple[str, str]:
    ((kind, value),) = binding.items()
    return kind, value


def binding_label(binding: dict[str, str]) -> str:
    kind, value = binding_key(binding)
    return f"{kind} {value}"


def ranking_profile_problems(
    *, name: Any, knobs: Any, bindings: Any, profile: RankingProfile | None = None
) -> dict[str, list[str]]:
    """{field path: [reasons]} for a profile's name, knobs and bindings; empty when valid.
    A binding held by another profile than `profile` is a problem too."""
    errors: dict[str, list[str]] = {}

    def add(field: str, reason: str) -> None:
        errors.setdefault(field, []).append(reason)

    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        add(
            "name",
            "must be 1-64 lowercase letters, digits, '_' or '-', not starting with '_' or '-'",
        )
    if not isinstance(knobs, dict):
        add("knobs", "must be a JSON object of ranking knobs")
    else:
        storable = {}
        for key, value in knobs.items():
            if not isinstance(key, str) or unstorable_text_reason(key):
                add("knobs", f"has a knob name that is not storable text: {shown(key)}")
            else:
                storable[key] = value
        for field, reason in check_config(storable):
            add(f"knobs.{path_part(field)}", reason)
    if not isinstance(bindings, list):
        add("bindings", 'must be a list of {"segment": s} or {"namespace": n}')
        return errors
    if len(bindings) > MAX_BINDINGS:
        add("bindings", f"at most {MAX_BINDINGS} bindings")
        return errors
    seen: dict[tuple[str, str], int] = {}
    for index, binding in enumerate(bindings):
        field = f"bindings[{index}]"
        if not isinstance(binding, dict) or len(binding) != 1:
            add(field, 'must be one of {"segment": s} or {"namespace": n}')
            continue
        ((kind, value),) = binding.items()
        if kind not in BINDING_KINDS:
            add(field, f"binds by {shown(kind)}: must be one of {', '.join(BINDING_KINDS)}")
        elif not isinstance(value, str) or not value.strip():
            add(f"{field}.{kind}", "must be a non-empty string")
        elif len(value) > MAX_BINDING_VALUE:
            add(f"{field}.{kind}", f"must be at most {MAX_BINDING_VALUE} characters")
        elif reason := unstorable_text_reason(value):
            add(f"{field}.{kind}", reason)
        elif (kind, value) in seen:
            add(field, f"repeats bindings[{seen[kind, value]}]")
        else:
            seen[kind, value] = index
    if seen:
        held = RankingProfileBinding.objects.filter(
            kind__in={kind for kind, _ in seen}, value__in={value for _, value in seen}
        ).select_related("profile")
        for binding in held:
            index = seen.get((binding.kind, binding.value))
            if index is not None and (profile is None or binding.profile_id != profile.pk):
                add(
                    f"bindings[{index}]",
                    f"{binding.kind} {shown(binding.value)} is already bound to profile "
                    f"'{binding.profile.name}'",
                )
    return errors


def ranking_profile_save(
    *,
    profile: RankingProfile | None = None,
    name: Any,
    knobs: Any,
    bindings: Any,
    is_default: bool = False,
    actor=None,
) -> RankingProfile:
    """Create (`profile` None) or change a profile. Making it the default takes the flag off
    the previous default (a new version of that one too). Raises InvalidInput naming the
    field. A save that changes nothing keeps the version."""
    errors = ranking_profile_problems(name=name, knobs=knobs, bindings=bindings, profile=profile)
    if not errors:
        clash = RankingProfile.objects.filter(name=name)
        if profile is not None:
            clash = clash.exclude(pk=profile.pk)
        if clash.exists():
            errors["name"] = [f"a profile named '{name}' exists already"]
    if errors:
        raise InvalidInput(errors)
    with transaction.atomic():
        if profile is not None:
            profile = RankingProfile.objects.select_for_update().get(pk=profile.pk)
        else:
            profile = RankingProfile()
        if is_default and not profile.is_default:
            for previous in RankingProfile.objects.select_for_update().filter(is_default=True):
                previous.is_default = False
                previous.updated_by = actor
                previous.save(update_fields=["is_default", "updated_by"])
        profile.name = name
        profile.knobs = knobs
        profile.bindings = bindings
        profile.is_default = bool(is_default)
        profile.updated_by = actor
        try:
            with transaction.atomic():
                profile.save()
        except IntegrityError as error:
            # A concurrent save took a binding or the name between the check and the write.
            raise InvalidInput({_integrity_field(error): [_integrity_reason(error)]}) from None
    profile.refresh_from_db()
    return profile


def _integrity_field(error: IntegrityError) -> str:
    text = str(error)
    if "bindings" in text:
        return "bindings"
    if "one_default" in text:
        return "is_default"
    return "name"


def _integrity_reason(error: IntegrityError) -> str:
    return {
        "bindings": "a binding is already held by another profile",
        "is_default": "another profile became the default meanwhile: try again",
        "name": "a profile with this name exists already",
    }[_integrity_field(error)]


def ranking_profile_delete(*, profile: RankingProfile) -> None:
    """Delete a profile (its history stays). The default profile cannot be deleted: make
    another profile the default first."""
    if profile.is_default:
        raise IllegalTransition(
            f"profile '{profile.name}' is the default: make another profile the default first"
        )
    profile.delete()


def ranking_profile_get(*, name: str) -> RankingProfile:
    profile = RankingProfile.objects.filter(name=name).first()
    if profile is None:
        known = ", ".join(RankingProfile.objects.values_list("name", flat=True)) or "none"
        raise NotFound(f"no ranking profile named {shown(name)} (profiles: {known})")
    return profile


def ranking_profile_definition(profile: RankingProfile) -> dict:
    """The profile as plain data: what `ranking_profile_install` takes, and what a report
    bundle records."""
    return {
        "name": profile.name,
        "id": profile.pk,
        "version": profile.version,
        "knobs": dict(profile.knobs),
        "bindings": list(profile.bindings),
        "is_default": profile.is_default,
    }


def ranking_profile_install(definition: dict, *, as_default: bool, actor=None) -> RankingProfile:
    """Create or update (by name) the profile a definition describes, e.g. a live profile
    copied into a scratch database. `as_default` makes it the default profile; otherwise it
    keeps the default flag it has here (a new profile is not the default). Its version is
    this database's own count of changes."""
    if not isinstance(definition, dict):
        raise InvalidInput({"definition": ["must be a JSON object"]})
    missing = [field for field in ("name", "knobs") if field not in definition]
    if missing:
        raise InvalidInput({field: ["is required"] for field in missing})
    name = definition["name"]
    existing = RankingProfile.objects.filter(name=name).first() if isinstance(name, str) else None
    return ranking_profile_save(
        profile=existing,
        name=name,
        knobs=definition["knobs"],
        bindings=definition.get("bindings", []),
        is_default=as_default or bool(existing and existing.is_default),
        actor=actor,
    )
