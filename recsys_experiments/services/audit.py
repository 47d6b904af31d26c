from __future__ import annotations

from recsys_experiments.models import AuditEntry, Experiment


def audit_record(
    *,
    experiment: Experiment,
    action: str,
    actor,
    source: str,
    before: dict | None = None,
    after: dict | None = None,
    subject_user=None,
) -> AuditEntry:
    """One audit row; callers write it inside the transaction of the change it describes."""
    return AuditEntry.objects.create(
        experiment=experiment,
        experiment_key=experiment.key,
        action=action,
        actor=actor if getattr(actor, "pk", None) else None,
        subject_user=subject_user,
        source=source,
        before=before,
        after=after,
    )
