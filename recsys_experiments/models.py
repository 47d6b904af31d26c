import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Now

from recsys_experiments.lib.constants import (
    ASSIGNMENT_MODE_LABELS,
    EXPERIMENT_STATUS_LABELS,
    KEY_PATTERN,
    PLATFORM_LABELS,
    SALT_PATTERN,
)


def text_choices(name: str, labels: dict[str, str]) -> type[models.TextChoices]:
    """TextChoices built from a lib/constants.py list: member `DRAFT` = ("draft", "Draft")."""
    return models.TextChoices(
        name, [(value.upper(), (value, label)) for value, label in labels.items()]
    )


ExperimentStatus = text_choices("ExperimentStatus", EXPERIMENT_STATUS_LABELS)
Platform = text_choices("Platform", PLATFORM_LABELS)


class Experiment(models.Model):
    """An A/B experiment. Rows are written through `services.experiments`, which enforces the
    lifecycle; the CHECK constraints below hold whatever writes the table."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    key = models.TextField(unique=True)
    description = models.TextField(blank=True, default="")
    status = models.TextField(
        choices=ExperimentStatus.choices,
        default=ExperimentStatus.DRAFT,
        db_default=ExperimentStatus.DRAFT,
    )
    # [{"name": str, "weight": float, "config": {...}}], weights normalised to sum 1.
    variants = models.JSONField()
    salt = models.TextField()
    traffic = models.FloatField(default=1.0, db_default=1.0)
    namespace_name = models.TextField(null=True, blank=True)
    namespace_start = models.FloatField(null=True, blank=True)
    namespace_end = models.FloatField(null=True, blank=True)
    platform = models.TextField(choices=Platform.choices, null=True, blank=True)
    min_app_version = models.TextField(null=True, blank=True)
    max_app_version = models.TextField(null=True, blank=True)
    # [{"metric": "like_rate", "max_drop": 0.02}, {"metric": "untagged_impressions",
    # "max_share": 0.01}]: evaluated by the results report (lib/guardrails.py).
    guardrails = models.JSONField(default=list, db_default=[], blank=True)
    # Results use always-valid (sequential) intervals and p-values when true, fixed-horizon
    # ones when false (docs/recsys-experiments.md, "Sequential testing").
    sequential_testing = models.BooleanField(default=True, db_default=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_column="created_by",
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    # Maintained by the tg_set_updated_at() trigger.
    updated_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "rec_experiments"
        ordering = ("-updated_at",)
        indexes = [
            models.Index(fields=["status"], name="idx_rec_experiments_status"),
            models.Index(fields=["-updated_at"], name="idx_rec_experiments_updated_at"),
            models.Index(fields=["-started_at"], name="idx_rec_experiments_started_at"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=ExperimentStatus.values),
                name="rec_experiments_status_check",
            ),
            models.CheckConstraint(
                condition=models.Q(key__regex=KEY_PATTERN), name="rec_experiments_key_slug_check"
            ),
            models.CheckConstraint(
                condition=models.Q(traffic__gte=0, traffic__lte=1),
                name="rec_experiments_traffic_check",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(
                        namespace_name__isnull=True,
                        namespace_start__isnull=True,
                        namespace_end__isnull=True,
                    )
                    | models.Q(
                        namespace_name__isnull=False,
                        namespace_start__gte=0,
                        namespace_start__lt=models.F("namespace_end"),
                        namespace_end__lte=1,
                    )
                ),
                name="rec_experiments_namespace_check",
            ),
            models.CheckConstraint(
                condition=models.Q(platform__isnull=True) | models.Q(platform__in=Platform.values),
                name="rec_experiments_platform_check",
            ),
            models.CheckConstraint(
                condition=models.Q(salt__regex=SALT_PATTERN),
                name="rec_experiments_salt_ascii_check",
            ),
            # The JSON-array check is added in SQL (jsonb_typeof), see migration 0002, and the
            # bounds of lib/experiment_rules.py (description length, variant and guardrail
            # counts, namespace name and app version patterns) in migration 0005.
        ]

    def __str__(self) -> str:
        return self.key

    def phase_definition(self) -> dict:
        """What a phase fixes: a change to any of these while active starts a new phase."""
        return {
            "weights": [
                {"name": variant["name"], "weight": variant["weight"]} for variant in self.variants
            ],
            "traffic": self.traffic,
            "targeting": self.targeting,
            "namespace": self.namespace,
            "salt": self.salt,
        }

    @property
    def variant_names(self) -> list[str]:
        return [variant["name"] for variant in self.variants]

    @property
    def namespace(self) -> dict | None:
        if self.namespace_name is None:
            return None
        return {
            "name": self.namespace_name,
            "start": self.namespace_start,
            "end": self.namespace_end,
        }

    @property
    def targeting(self) -> dict:
        rules = {
            "platform": self.platform,
            "min_app_version": self.min_app_version,
            "max_app_version": self.max_app_version,
        }
        return {name: value for name, value in rules.items() if value is not None}


AssignmentMode = text_choices("AssignmentMode", ASSIGNMENT_MODE_LABELS)


class Assignment(models.Model):
    """A user's sticky variant in an experiment. Written by the SQL functions
    rec_assign_variant (auto) and rec_set_user_variant (manual); reset deletes the row."""

    pk = models.CompositePrimaryKey("experiment_id", "user_id")
    # The foreign keys are created in SQL with ON DELETE CASCADE (migration 0002), so that a
    # delete from any client removes the assignments too.
    experiment = models.ForeignKey(
        Experiment,
        on_delete=models.CASCADE,
        db_constraint=False,
        db_index=False,
        related_name="assignments",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        db_constraint=False,
        db_index=False,
        related_name="experiment_assignments",
    )
    variant = models.TextField()
    assignment_mode = models.TextField(
        choices=AssignmentMode.choices, default=AssignmentMode.AUTO, db_default=AssignmentMode.AUTO
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_column="assigned_by",
    )
    assigned_at = models.DateTimeField(db_default=Now())
    # The experiment's phase (ExperimentPhase.number) when rec_assign_variant stored the row;
    # NULL for manual overrides and rows stored before phases existed.
    phase = models.IntegerField(null=True, blank=True)

    class Meta:
        db_table = "rec_user_experiment_assignments"
        indexes = [
            models.Index(fields=["user", "-assigned_at"], name="idx_rec_assignments_user_time"),
            models.Index(
                fields=["experiment", "-assigned_at"], name="idx_rec_assignments_exp_time"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(assignment_mode__in=AssignmentMode.values),
                name="rec_assignments_mode_check",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id}/{self.user_id}: {self.variant}"


class ExperimentPhase(models.Model):
    """One stretch of an active experiment with a fixed definition. Activation opens phase 1;
    every change to the weights, traffic, namespace or targeting of an active experiment, and
    every salt rotation, closes the current phase and opens the next (services.experiments);
    ending closes the last. Results are computed per phase (telemetry/results/analysis.py)."""

    id = models.BigAutoField(primary_key=True)
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="phases", db_index=False
    )
    number = models.IntegerField()
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    # [{"name": "control", "weight": 0.5}, ...] in the experiment's variant order.
    weights = models.JSONField()
    traffic = models.FloatField()
    targeting = models.JSONField(default=dict)
    namespace = models.JSONField(null=True, blank=True)
    salt = models.TextField()

    class Meta:
        db_table = "rec_experiment_phases"
        ordering = ("experiment", "number")
        constraints = [
            # Its index leads with experiment_id: it also serves the foreign key.
            models.UniqueConstraint(
                fields=["experiment", "number"], name="rec_experiment_phases_number_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(number__gte=1), name="rec_experiment_phases_number_check"
            ),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True)
                | models.Q(ended_at__gte=models.F("started_at")),
                name="rec_experiment_phases_order_check",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id} phase {self.number}"

    def as_dict(self) -> dict:
        return {
            "number": self.number,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "weights": self.weights,
            "traffic": self.traffic,
            "targeting": self.targeting,
            "namespace": self.namespace,
        }


class AuditAction(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Edited"
    ACTIVATE = "activate", "Activated"
    END = "end", "Ended"
    DUPLICATE = "duplicate", "Duplicated"
    ROTATE_SALT = "rotate_salt", "Rotated salt"
    OVERRIDE = "override", "Forced variant"
    RESET = "reset", "Reset to auto"
    DELETE = "delete", "Deleted"


class AuditEntry(models.Model):
    """Who did what to an experiment or a user's assignment, written in the same transaction
    as the change. The key is kept as text so history outlives a deleted experiment."""

    experiment = models.ForeignKey(
        Experiment, null=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    experiment_key = models.TextField()
    action = models.TextField(choices=AuditAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    subject_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Where the change came from: api, admin, command.
    source = models.TextField()
    before = models.JSONField(null=True)
    after = models.JSONField(null=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "rec_experiment_audit_log"
        ordering = ("-created_at", "-id")
        verbose_name_plural = "audit entries"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(action__in=AuditAction.values), name="rec_audit_action_check"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_key}: {self.action}"


class RetiredExperimentKey(models.Model):
    """A key that can never be used again: that of a deleted draft which users had been
    assigned to (manual overrides). Whatever was recorded under the key (assignments,
    impressions and outcomes tagged with it, audit entries) would otherwise merge with a new
    experiment of the same key."""

    key = models.TextField(primary_key=True)
    experiment_id = models.UUIDField()
    retired_at = models.DateTimeField(db_default=Now())
    reason = models.TextField()

    class Meta:
        db_table = "rec_retired_experiment_keys"
        ordering = ("-retired_at",)

    def __str__(self) -> str:
        return self.key
