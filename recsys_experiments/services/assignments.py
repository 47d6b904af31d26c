"""Assignments: automatic (hashed, sticky), manual overrides and resets.

The SQL functions rec_assign_variant and rec_set_user_variant are the authority; these wrap
them with transactions, audit entries and domain errors.
"""

from __future__ import annotations

from django.db import DatabaseError, connection, transaction

from recsys_experiments.lib.errors import IllegalTransition, InvalidInput, NotFound
from recsys_experiments.lib.text import shown, unstorable_text_reason
from recsys_experiments.models import Assignment, AuditAction, Experiment

from .audit import audit_record

# SQLSTATEs raised by rec_set_user_variant.
NO_DATA_FOUND = "P0002"
INVALID_PARAMETER_VALUE = "22023"
OBJECT_NOT_IN_PREREQUISITE_STATE = "55000"


def _assignment_state(experiment: Experiment, user) -> dict | None:
    row = Assignment.objects.filter(experiment=experiment, user=user).first()
    if row is None:
        return None
    return {"variant": row.variant, "assignment_mode": row.assignment_mode}


def assignment_assign(
    *,
    experiment_key: str,
    user,
    platform: str | None = None,
    app_version: str | None = None,
) -> str | None:
    """The user's variant (sticky; stored as auto on first call), or None when not enrolled."""
    with connection.cursor() as cursor:
        cursor.execute(
            "select rec_assign_variant(%s, %s, %s, %s)",
            [experiment_key, user.pk, platform, app_version],
        )
        return cursor.fetchone()[0]


def _sqlstate(error: DatabaseError) -> str | None:
    return getattr(error.__cause__, "sqlstate", None)


def _message(error: DatabaseError) -> str:
    diagnostic = getattr(error.__cause__, "diag", None)
    # Escaped: the message quotes the caller's variant, which may hold a newline.
    return shown(getattr(diagnostic, "message_primary", None) or str(error), limit=300)


@transaction.atomic
def assignment_override(
    *, experiment: Experiment, user, variant: str, actor, source: str
) -> Assignment:
    # rec_set_user_variant names an unknown variant itself, but a NUL never reaches it.
    reason = unstorable_text_reason(variant) if isinstance(variant, str) else "must be a string"
    if reason:
        raise InvalidInput({"variant": [reason]})
    before = _assignment_state(experiment, user)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "select rec_set_user_variant(%s, %s, %s, %s)",
                [experiment.key, user.pk, variant, getattr(actor, "pk", None)],
            )
    except DatabaseError as error:
        state = _sqlstate(error)
        if state == INVALID_PARAMETER_VALUE:
            raise InvalidInput({"variant": [_message(error)]}) from error
        if state == NO_DATA_FOUND:
            raise NotFound(_message(error)) from error
        if state == OBJECT_NOT_IN_PREREQUISITE_STATE:
            raise IllegalTransition(_message(error)) from error
        raise
    assignment = Assignment.objects.get(experiment=experiment, user=user)
    audit_record(
        experiment=experiment,
        action=AuditAction.OVERRIDE,
        actor=actor,
        source=source,
        subject_user=user,
        before=before,
        after={"variant": variant, "assignment_mode": assignment.assignment_mode},
    )
    return assignment


@transaction.atomic
def assignment_reset(*, experiment: Experiment, user, actor, source: str) -> bool:
    """Back to automatic: the row is deleted and the next request re-derives the hashed
    variant. Returns whether there was an assignment to delete."""
    before = _assignment_state(experiment, user)
    deleted, _ = Assignment.objects.filter(experiment=experiment, user=user).delete()
    if deleted:
        audit_record(
            experiment=experiment,
            action=AuditAction.RESET,
            actor=actor,
            source=source,
            subject_user=user,
            before=before,
            after=None,
        )
    return bool(deleted)
