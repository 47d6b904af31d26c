"""Experiment lifecycle: create, update, activate, end, duplicate, rotate-salt.

Each function owns its transaction, locks the experiment row while it decides, and writes an
audit entry. Rules: draft -> active -> ended only; an ended experiment is never reactivated
(duplicate it); the key is immutable once activated; rotating the salt needs an explicit
confirmation and re-randomises only automatic assignments.

Phases (rec_experiment_phases): activation opens phase 1; every change to the weights,
traffic, namespace or targeting of an active experiment, and every salt rotation, closes the
current phase and opens the next, in the same transaction as the change and its audit entry;
ending closes the last phase. Results are computed per phase.
"""

from __future__ import annotations

from django.contrib.postgres.functions import TransactionNow
from django.db import IntegrityError, transaction
from django.db.models import Count

from recsys_experiments.lib import experiment_rules
from recsys_experiments.lib.constants import KEY_RE
from recsys_experiments.lib.errors import IllegalTransition, InvalidInput
from recsys_experiments.lib.experiment_rules import clean_definition, clean_edit, generate_salt
from recsys_experiments.models import (
    AssignmentMode,
    AuditAction,
    Experiment,
    ExperimentPhase,
    ExperimentStatus,
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


def _save_new(experiment: Experiment) -> None:
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


def _phase_close(experiment: Experiment) -> int:
    """Ends the open phase now (this transaction's time); its number (0 when none is open)."""
    current = ExperimentPhase.objects.filter(experiment=experiment).order_by("-number").first()
    if current is None:
        return 0
    if current.ended_at is None:
        current.ended_at = TransactionNow()
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
def experiment_create(*, data: dict, actor, source: str) -> Experiment:
    definition = clean_definition(data)
    experiment = Experiment(created_by=actor if getattr(actor, "pk", None) else None)
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


def experiment_check_edit(experiment: Experiment, definition: dict) -> set[str]:
    """The fields `definition` changes, or the error that forbids the edit: the status rules
    of `lib.experiment_rules.check_edit_allowed`, and InvalidInput when the new variants drop
    a variant that users are still assigned to (a draft's manual overrides): they would be
    served a variant that no longer exists."""
    changed = experiment_rules.check_edit_allowed(
        status=experiment.status,
        current=experiment_definition(experiment),
        definition=definition,
    )
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
def experiment_update(*, experiment: Experiment, data: dict, partial: bool, actor, source: str):
    """Edit the definition. PUT (partial=False) needs every required field; PATCH only the
    ones it changes. Status and timestamps change only through the lifecycle functions."""
    experiment = _locked(experiment)
    definition = clean_edit(data, current=experiment_definition(experiment), partial=partial)
    changed = experiment_check_edit(experiment, definition)
    if not changed:
        return experiment
    before = experiment_representation(experiment)
    phase_before = experiment.phase_definition()
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


def _transition(experiment: Experiment, *, action: str, allowed_from: str, actor, source: str):
    experiment = _locked(experiment)
    if experiment.status != allowed_from:
        hint = " (duplicate it to run it again)" if experiment.status == "ended" else ""
        raise IllegalTransition(
            f'cannot {action} experiment "{experiment.key}": it is {experiment.status}{hint}'
        )
    before = experiment_representation(experiment)
    # now() of this transaction, which rec_active_experiments() compares against: the app
    # server's clock (or statement time) would leave a just-activated experiment inactive.
    if action == AuditAction.ACTIVATE:
        experiment.status = ExperimentStatus.ACTIVE
        experiment.started_at = experiment.started_at or TransactionNow()
    else:
        experiment.status = ExperimentStatus.ENDED
        experiment.ended_at = TransactionNow()
    experiment.save()
    experiment.refresh_from_db()
    if action == AuditAction.ACTIVATE:
        _phase_open(experiment, number=1, started_at=experiment.started_at)
    else:
        _phase_close(experiment)
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
def experiment_activate(*, experiment: Experiment, actor, source: str) -> Experiment:
    return _transition(
        experiment,
        action=AuditAction.ACTIVATE,
        allowed_from=ExperimentStatus.DRAFT,
        actor=actor,
        source=source,
    )


@transaction.atomic
def experiment_end(*, experiment: Experiment, actor, source: str) -> Experiment:
    return _transition(
        experiment,
        action=AuditAction.END,
        allowed_from=ExperimentStatus.ACTIVE,
        actor=actor,
        source=source,
    )


def _free_copy_key(key: str) -> str:
    for attempt in range(1, 1000):
        suffix = "_copy" if attempt == 1 else f"_copy{attempt}"
        candidate = key[: 63 - len(suffix)] + suffix
        if not Experiment.objects.filter(key=candidate).exists():
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
