"""Experiment lifecycle: create, update, activate, end, duplicate, rotate-salt.

Each function owns its transaction, locks the experiment row while it decides, and writes an
audit entry. Rules: draft -> active -> ended only; an ended experiment is never reactivated
(duplicate it); the key is immutable once activated; rotating the salt needs an explicit
confirmation and re-randomises only automatic assignments.

Phases (rec_experiment_phases): activation opens phase 1; every change to the weights,
traffic, namespace or targeting of an active experiment, and every salt rotation, closes the
current phase and opens the next, in the same transaction as the change and its audit entry;
ending closes the last phase. Results are computed per phase.

Scheduling: `started_at` of a draft is its scheduled start and `ended_at` (of a draft or an
active experiment) its scheduled end. rec_active_experiments() serves only active experiments
inside [started_at, ended_at), so serving stops at a scheduled end by itself; the status
changes (with the same audit entries as a manual activate/end) when `experiments_tick` runs
(`manage.py experiments tick`, from cron every minute): it activates the drafts whose start
has come and ends the active experiments whose end has passed.

Deleting: only drafts, audited. The key of a deleted draft that users were assigned to is
retired (rec_retired_experiment_keys) and never accepted again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.postgres.functions import TransactionNow
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from recsys_experiments.lib import experiment_rules
from recsys_experiments.lib.constants import KEY_RE
from recsys_experiments.lib.errors import DomainError, IllegalTransition, InvalidInput
from recsys_experiments.lib.experiment_rules import (
    SCHEDULE_FIELDS,
    check_schedule,
    clean_definition,
    clean_edit,
    generate_salt,
)
from recsys_experiments.models import (
    AssignmentMode,
    AuditAction,
    Experiment,
    ExperimentPhase,
    ExperimentStatus,
    RetiredExperimentKey,
)
from recsys_experiments.selectors import (
    experiment_definition,
    experiment_representation,
)

from .audit import audit_record


def _apply_definition(experiment: Experiment, definition: dict) -> None:
    namespace = definition["namespace"] or {}
    targeting = definition["targeting"]
    experiment.key = definition["key"]
    experiment.description = definition["description"]
    experiment.variants = definition["variants"]
    experiment.salt = definition["salt"]
    experiment.traffic = definition["traffic"]
    experiment.namespace_name = namespace.get("name")
    experiment.namespace_start = namespace.get("start")
    experiment.namespace_end = namespace.get("end")
    experiment.platform = targeting.get("platform")
    experiment.min_app_version = targeting.get("min_app_version")
    experiment.max_app_version = targeting.get("max_app_version")
    experiment.guardrails = definition["guardrails"]
    experiment.sequential_testing = definition["sequential_testing"]


def experiment_schedule(experiment: Experiment) -> dict:
    return {field: getattr(experiment, field) for field in SCHEDULE_FIELDS}


def _check_schedule(experiment: Experiment, definition: dict, now: datetime | None) -> dict:
    """The schedule fields the definition changes (checked), applied to `experiment`."""
    changed = check_schedule(
        status=experiment.status,
        current=experiment_schedule(experiment),
        schedule={f: definition[f] for f in SCHEDULE_FIELDS if f in definition},
        now=now or timezone.now(),
    )
    for field, value in changed.items():
        setattr(experiment, field, value)
    return changed


def retired_key_problem(key: str) -> str | None:
    """Why `key` cannot be used, when it is retired."""
    if RetiredExperimentKey.objects.filter(key=key).exists():
        return (
            f'"{key}" was the key of a deleted experiment that users were assigned to; '
            "keys are never reused: choose another"
        )
    return None


def _check_key_free(key: str) -> None:
    problem = retired_key_problem(key)
    if problem:
        raise InvalidInput({"key": [problem]})


def _save_new(experiment: Experiment) -> None:
    _check_key_free(experiment.key)
    try:
        with transaction.atomic():
            experiment.save(force_insert=True)
    except IntegrityError as error:
        if Experiment.objects.filter(key=experiment.key).exists():
            raise InvalidInput({"key": [f'"{experiment.key}" is already taken']}) from error
        raise
    experiment.refresh_from_db()


def _locked(experiment: Experiment) -> Experiment:
    return Experiment.objects.select_for_update().get(pk=experiment.pk)


def _phase_close(experiment: Experiment, at=None) -> int:
    """Ends the open phase at `at` (default: now, this transaction's time); its number (0 when
    none is open)."""
    current = ExperimentPhase.objects.filter(experiment=experiment).order_by("-number").first()
    if current is None:
        return 0
    if current.ended_at is None:
        # A phase opened after a scheduled end had passed (an edit before the tick) ends
        # when it started: empty, never served.
        current.ended_at = max(at, current.started_at) if at is not None else TransactionNow()
        current.save(update_fields=["ended_at"])
    return current.number


def _phase_open(experiment: Experiment, *, number: int, started_at=None) -> ExperimentPhase:
    return ExperimentPhase.objects.create(
        experiment=experiment,
        number=number,
        started_at=started_at or TransactionNow(),
        **experiment.phase_definition(),
    )


def _phase_next(experiment: Experiment) -> None:
    """Closes the current phase of an active experiment and opens the next."""
    _phase_open(experiment, number=_phase_close(experiment) + 1)


@transaction.atomic
def experiment_create(*, data: dict, actor, source: str, now: datetime | None = None):
    """A new draft; `started_at`/`ended_at` in `data` schedule its start and end."""
    definition = clean_definition(data)
    experiment = Experiment(created_by=actor if getattr(actor, "pk", None) else None)
    _check_schedule(experiment, definition, now)
    _apply_definition(experiment, definition)
    _save_new(experiment)
    audit_record(
        experiment=experiment,
        action=AuditAction.CREATE,
        actor=actor,
        source=source,
        after=experiment_representation(experiment),
    )
    return experiment


def experiment_check_edit(
    experiment: Experiment, definition: dict, *, now: datetime | None = None
) -> set[str]:
    """The fields `definition` changes, or the error that forbids the edit: the status rules
    of `lib.experiment_rules.check_edit_allowed` and `check_schedule`, InvalidInput for a
    retired key, and InvalidInput when the new variants drop a variant that users are still
    assigned to (a draft's manual overrides): they would be served a variant that no longer
    exists."""
    changed = experiment_rules.check_edit_allowed(
        status=experiment.status,
        current=experiment_definition(experiment),
        definition=definition,
    )
    changed |= set(
        check_schedule(
            status=experiment.status,
            current=experiment_schedule(experiment),
            schedule={f: definition[f] for f in SCHEDULE_FIELDS if f in definition},
            now=now or timezone.now(),
        )
    )
    if "key" in changed:
        _check_key_free(definition["key"])
    _check_no_assigned_variant_dropped(experiment, definition["variants"])
    return changed


def _check_no_assigned_variant_dropped(experiment: Experiment, variants: list[dict]) -> None:
    dropped = set(experiment.variant_names) - {variant["name"] for variant in variants}
    if not dropped:
        return
    assigned = (
        experiment.assignments.filter(variant__in=dropped)
        .values_list("variant")
        .annotate(users=Count("*"))
        .order_by("variant")
    )
    if assigned:
        listed = ", ".join(
            f'"{name}" ({users} user{"" if users == 1 else "s"})' for name, users in assigned
        )
        raise InvalidInput(
            {
                "variants": [
                    f"drops variants that users are still assigned to by manual overrides: "
                    f"{listed}; reset those overrides first or keep the names"
                ]
            }
        )


@transaction.atomic
def experiment_update(
    *,
    experiment: Experiment,
    data: dict,
    partial: bool,
    actor,
    source: str,
    now: datetime | None = None,
):
    """Edit the definition and the schedule. PUT (partial=False) needs every required field;
    PATCH only the ones it changes; both leave the schedule alone when they do not name
    started_at/ended_at. The status changes only through the lifecycle functions."""
    experiment = _locked(experiment)
    definition = clean_edit(data, current=experiment_definition(experiment), partial=partial)
    changed = experiment_check_edit(experiment, definition, now=now)
    if not changed:
        return experiment
    before = experiment_representation(experiment)
    phase_before = experiment.phase_definition()
    _check_schedule(experiment, definition, now)
    _apply_definition(experiment, definition)
    try:
        with transaction.atomic():
            experiment.save()
    except IntegrityError as error:
        raise InvalidInput({"key": [f'"{experiment.key}" is already taken']}) from error
    experiment.refresh_from_db()
    if experiment.status == ExperimentStatus.ACTIVE and experiment.phase_definition() != (
        phase_before
    ):
        _phase_next(experiment)
    audit_record(
        experiment=experiment,
        action=AuditAction.UPDATE,
        actor=actor,
        source=source,
        before=before,
        after=experiment_representation(experiment),
    )
    return experiment


def _start_time(experiment: Experiment, now: datetime | None):
    """A scheduled start still ahead is kept (served from then on); otherwise the experiment
    starts now: the given `now`, or this transaction's now(), which rec_active_experiments()
    compares against (the app server's clock, or statement time, would leave a
    just-activated experiment inactive)."""
    scheduled = experiment.started_at
    if scheduled is not None and scheduled > (now or timezone.now()):
        return scheduled
    return now or TransactionNow()


def _end_time(experiment: Experiment, now: datetime | None):
    """A scheduled end already passed is kept (serving stopped then); otherwise now."""
    scheduled = experiment.ended_at
    if scheduled is not None and scheduled <= (now or timezone.now()):
        return scheduled
    return now or TransactionNow()


def _transition(
    experiment: Experiment, *, action: str, allowed_from: str, actor, source: str, now=None
):
    experiment = _locked(experiment)
    if experiment.status != allowed_from:
        hint = " (duplicate it to run it again)" if experiment.status == "ended" else ""
        raise IllegalTransition(
            f'cannot {action} experiment "{experiment.key}": it is {experiment.status}{hint}'
        )
    before = experiment_representation(experiment)
    if action == AuditAction.ACTIVATE:
        if experiment.ended_at is not None and experiment.ended_at <= (now or timezone.now()):
            raise IllegalTransition(
                f'cannot activate experiment "{experiment.key}": its scheduled end '
                f"({experiment.ended_at.isoformat()}) has passed; clear or move ended_at first"
            )
        experiment.status = ExperimentStatus.ACTIVE
        experiment.started_at = _start_time(experiment, now)
    else:
        experiment.status = ExperimentStatus.ENDED
        experiment.ended_at = _end_time(experiment, now)
    experiment.save()
    experiment.refresh_from_db()
    if action == AuditAction.ACTIVATE:
        _phase_open(experiment, number=1, started_at=experiment.started_at)
    else:
        _phase_close(experiment, at=experiment.ended_at)
    audit_record(
        experiment=experiment,
        action=action,
        actor=actor,
        source=source,
        before=before,
        after=experiment_representation(experiment),
    )
    return experiment


@transaction.atomic
def experiment_activate(*, experiment: Experiment, actor, source: str, now=None) -> Experiment:
    """Draft -> active. A scheduled start still ahead is kept (served from then on)."""
    return _transition(
        experiment,
        action=AuditAction.ACTIVATE,
        allowed_from=ExperimentStatus.DRAFT,
        actor=actor,
        source=source,
        now=now,
    )


@transaction.atomic
def experiment_end(*, experiment: Experiment, actor, source: str, now=None) -> Experiment:
    """Active -> ended. A scheduled end already passed stays the end time."""
    return _transition(
        experiment,
        action=AuditAction.END,
        allowed_from=ExperimentStatus.ACTIVE,
        actor=actor,
        source=source,
        now=now,
    )


@dataclass(frozen=True)
class TickResult:
    key: str
    action: str  # "activate" or "end"
    error: str | None = None


def experiments_tick(*, now: datetime | None = None, source: str = "command") -> list[TickResult]:
    """Activate the drafts whose scheduled start has come and end the active experiments
    whose scheduled end has passed, each in its own transaction, with the same audit entries
    as a manual activate/end (actor none). One failure (a draft whose end passed before it
    started) is reported and does not stop the others."""
    moment = now or timezone.now()
    due = [
        (experiment, AuditAction.END, experiment_end)
        for experiment in Experiment.objects.filter(
            status=ExperimentStatus.ACTIVE, ended_at__lte=moment
        ).order_by("ended_at", "key")
    ] + [
        (experiment, AuditAction.ACTIVATE, experiment_activate)
        for experiment in Experiment.objects.filter(
            status=ExperimentStatus.DRAFT, started_at__lte=moment
        ).order_by("started_at", "key")
    ]
    results = []
    for experiment, action, service in due:
        try:
            service(experiment=experiment, actor=None, source=source, now=now)
        except DomainError as error:
            results.append(TickResult(experiment.key, action, error.message))
        else:
            results.append(TickResult(experiment.key, action))
    return results


@transaction.atomic
def experiment_delete(*, experiment: Experiment, actor, source: str) -> None:
    """Delete a draft (with its manual overrides), audited; active and ended experiments
    refuse (end one instead: its data stays). When users had been assigned to the draft, its
    key is retired for good. The audit entry outlives the row (experiment_key is text)."""
    experiment = _locked(experiment)
    if experiment.status != ExperimentStatus.DRAFT:
        raise IllegalTransition(
            f'cannot delete experiment "{experiment.key}": it is {experiment.status}; only '
            "drafts can be deleted"
            + (" (end it instead)" if experiment.status == ExperimentStatus.ACTIVE else "")
        )
    assigned = experiment.assignments.count()
    before = experiment_representation(experiment)
    if assigned:
        RetiredExperimentKey.objects.create(
            key=experiment.key,
            experiment_id=experiment.pk,
            reason=f"deleted draft with {assigned} assignment{'' if assigned == 1 else 's'}",
        )
    audit_record(
        experiment=experiment,
        action=AuditAction.DELETE,
        actor=actor,
        source=source,
        before=before,
        after={"deleted": True, "assignments_deleted": assigned, "key_retired": bool(assigned)},
    )
    experiment.delete()


def _free_copy_key(key: str) -> str:
    for attempt in range(1, 1000):
        suffix = "_copy" if attempt == 1 else f"_copy{attempt}"
        candidate = key[: 63 - len(suffix)] + suffix
        taken = Experiment.objects.filter(key=candidate).exists()
        if not taken and not retired_key_problem(candidate):
            return candidate
    raise InvalidInput({"key": ["no free copy key; give one explicitly"]})


@transaction.atomic
def experiment_duplicate(
    *, experiment: Experiment, new_key: str | None = None, actor, source: str
) -> Experiment:
    """A new draft with the same definition under a new key and a new salt."""
    if new_key is not None and (not isinstance(new_key, str) or not KEY_RE.fullmatch(new_key)):
        raise InvalidInput({"key": ["must be 2-63 lower-case letters, digits and underscores"]})
    copy = Experiment(created_by=actor if getattr(actor, "pk", None) else None)
    definition = {
        **experiment_definition(experiment),
        "key": new_key or _free_copy_key(experiment.key),
        "salt": generate_salt(),
    }
    _apply_definition(copy, definition)
    _save_new(copy)
    audit_record(
        experiment=copy,
        action=AuditAction.DUPLICATE,
        actor=actor,
        source=source,
        before={"duplicated_from": experiment.key},
        after=experiment_representation(copy),
    )
    return copy


@transaction.atomic
def experiment_rotate_salt(
    *, experiment: Experiment, confirm: bool, actor, source: str
) -> tuple[Experiment, int]:
    """A new salt: every automatic assignment is deleted (users are re-hashed on their next
    request); manual overrides stay. Returns the experiment and how many assignments moved."""
    if confirm is not True:
        raise InvalidInput(
            {
                "confirm": [
                    "must be true: rotating the salt re-randomises every automatic assignment"
                ]
            }
        )
    experiment = _locked(experiment)
    if experiment.status == ExperimentStatus.ENDED:
        raise IllegalTransition(f'experiment "{experiment.key}" has ended; its salt is final')
    old_salt = experiment.salt
    experiment.salt = generate_salt()
    experiment.save()
    deleted, _ = experiment.assignments.filter(assignment_mode=AssignmentMode.AUTO).delete()
    experiment.refresh_from_db()
    if experiment.status == ExperimentStatus.ACTIVE:
        _phase_next(experiment)
    audit_record(
        experiment=experiment,
        action=AuditAction.ROTATE_SALT,
        actor=actor,
        source=source,
        before={"salt": old_salt},
        after={"salt": experiment.salt, "auto_assignments_deleted": deleted},
    )
    return experiment, deleted
