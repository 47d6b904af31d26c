"""Reads for the API, the admin and the commands: plain data or querysets, no writes."""

from __future__ import annotations

import json
import uuid

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Q, QuerySet

from .lib.constants import KEY_RE
from .lib.errors import InvalidInput, NotFound
from .lib.manifest import growthbook_features
from .lib.text import shown, unstorable_text_reason
from .models import AssignmentMode, Experiment


def experiment_get(key: str) -> Experiment:
    # A string that is no key (a NUL in it, a trailing newline, 1 MB) names no experiment:
    # answered without a query, which PostgreSQL would refuse for a NUL.
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        raise NotFound(f'no experiment with key "{shown(key)}"')
    try:
        return Experiment.objects.get(key=key)
    except Experiment.DoesNotExist:
        raise NotFound(f'no experiment with key "{key}"') from None


def experiment_list(*, status: str | None = None) -> QuerySet[Experiment]:
    experiments = Experiment.objects.annotate(
        enrolled_users=Count("assignments"),
        manual_users=Count("assignments", filter=Q(assignments__assignment_mode="manual")),
    ).order_by("key")
    if status:
        experiments = experiments.filter(status=status)
    return experiments


def user_find(identifier: str):
    """A user by uuid, username or email (case-insensitive), in that order."""
    users = get_user_model().objects
    identifier = (identifier or "").strip()
    if not identifier:
        # An empty string would otherwise match any user whose email is blank.
        raise InvalidInput({"user": ["required: a uuid, username or email"]})
    reason = unstorable_text_reason(identifier)
    if reason:
        raise InvalidInput({"user": [reason]})
    try:
        return users.get(pk=uuid.UUID(identifier))
    except ValueError:
        pass
    except users.model.DoesNotExist:
        raise NotFound(f'no user with id "{identifier}"') from None
    user = (
        users.filter(username=identifier).first() or users.filter(email__iexact=identifier).first()
    )
    if user is None:
        raise NotFound(f'no user with id, username or email "{shown(identifier)}"')
    return user


def experiment_definition(experiment: Experiment) -> dict:
    """The editable part of an experiment, in the shape services accept."""
    return {
        "key": experiment.key,
        "description": experiment.description,
        "variants": experiment.variants,
        "salt": experiment.salt,
        "traffic": experiment.traffic,
        "namespace": experiment.namespace,
        "targeting": experiment.targeting,
        "guardrails": experiment.guardrails,
        "sequential_testing": experiment.sequential_testing,
    }


def _timestamp(value) -> str | None:
    return value.isoformat() if value is not None else None


def experiment_representation(experiment: Experiment) -> dict:
    """The experiment as the admin API, `experiments show --json` and fixtures give it."""
    return {
        **experiment_definition(experiment),
        "status": experiment.status,
        "started_at": _timestamp(experiment.started_at),
        "ended_at": _timestamp(experiment.ended_at),
        "created_at": _timestamp(experiment.created_at),
        "updated_at": _timestamp(experiment.updated_at),
    }


def user_assignments(user) -> dict:
    """A user's stored assignments, and every active experiment with the user's current
    variant, its mode (manual, auto or unassigned) and what the hash gives them."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            select e.key, e.status, a.variant, a.assignment_mode, a.assigned_at,
                   admin.username,
                   e.status = 'active' and active.id is not null as is_active,
                   case when active.id is not null then rec_pick_variant(
                       e.salt, %(user)s::text, e.variants, e.traffic,
                       e.namespace_name, e.namespace_start, e.namespace_end,
                       e.platform, e.min_app_version, e.max_app_version, null, null
                   ) end as hashed_variant,
                   (e.platform is not null or e.min_app_version is not null
                    or e.max_app_version is not null) as is_targeted
            from rec_experiments as e
            left join rec_user_experiment_assignments as a
                   on a.experiment_id = e.id and a.user_id = %(user)s
            left join accounts_user as admin on admin.id = a.assigned_by
            left join rec_active_experiments() as active on active.id = e.id
            where a.user_id is not null or active.id is not null
            order by e.key
            """,
            {"user": user.pk},
        )
        columns = [column.name for column in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    assignments, active = [], []
    for row in rows:
        if row["variant"] is not None:
            assignments.append(
                {
                    "experiment_key": row["key"],
                    "variant": row["variant"],
                    "assignment_mode": row["assignment_mode"],
                    "assigned_by": row["username"],
                    "assigned_at": _timestamp(row["assigned_at"]),
                }
            )
        if row["is_active"]:
            active.append(
                {
                    "experiment_key": row["key"],
                    "variant": row["variant"],
                    "assignment_mode": row["assignment_mode"] or "unassigned",
                    "hashed_variant": row["hashed_variant"],
                    # Platform/version rules are judged per request, so the hash preview
                    # without a request may say "not enrolled" for a targeted experiment.
                    "targeted": row["is_targeted"],
                }
            )
    return {
        "user": {"id": str(user.pk), "username": user.username, "email": user.email},
        "assignments": assignments,
        "active_experiments": active,
    }


def user_active_assignments(user) -> list[dict]:
    """The user's stored variants in running experiments (what the deck tags them with)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            select e.key, a.variant, a.assignment_mode, a.assigned_at
            from rec_active_experiments() as e
            join rec_user_experiment_assignments as a
              on a.experiment_id = e.id and a.user_id = %s
            order by e.key
            """,
            [user.pk],
        )
        return [
            {
                "experiment_key": key,
                "variant": variant,
                "assignment_mode": mode,
                "assigned_at": _timestamp(assigned_at),
            }
            for key, variant, mode, assigned_at in cursor.fetchall()
        ]


def experiment_assignment_counts(experiment: Experiment) -> list[dict]:
    """Per variant: automatic and manual assignments."""
    counts = {
        (row["variant"], row["assignment_mode"]): row["users"]
        for row in experiment.assignments.values("variant", "assignment_mode").annotate(
            users=Count("*")
        )
    }
    return [
        {
            "variant": name,
            "auto": counts.get((name, "auto"), 0),
            "manual": counts.get((name, "manual"), 0),
            "total": counts.get((name, "auto"), 0) + counts.get((name, "manual"), 0),
        }
        for name in experiment.variant_names
    ]


def auto_assignments_count(experiment: Experiment) -> int:
    """How many assignments a salt rotation would re-randomise (for confirmation pages)."""
    return experiment.assignments.filter(assignment_mode=AssignmentMode.AUTO).count()


def experiments_manifest() -> dict:
    """The running experiments (rec_active_experiments) as a GrowthBook `features` payload
    (lib/manifest.py): what an SDK needs to reproduce the server's hashed assignments."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            select e.key, e.variants, e.salt, e.traffic, e.namespace_name, e.namespace_start,
                   e.namespace_end, e.platform, e.min_app_version, e.max_app_version
            from rec_active_experiments() as e
            order by e.key
            """
        )
        columns = [column.name for column in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        if isinstance(row["variants"], str):
            row["variants"] = json.loads(row["variants"])
    return growthbook_features(rows)
