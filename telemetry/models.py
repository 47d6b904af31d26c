import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Now

from recsys_experiments.lib.constants import (
    ACTED_UPON_OUTCOME_TYPES,
    IMPRESSION,
    KEY_PATTERN,
    METRIC_EVENT_LABELS,
    METRIC_KIND_LABELS,
    METRIC_VALUE_LABELS,
    OUTCOME_TYPE_LABELS,
    RATIO,
    VALUED_OUTCOME_TYPES,
)
from recsys_experiments.models import text_choices

OutcomeType = text_choices("OutcomeType", OUTCOME_TYPE_LABELS)
MetricKind = text_choices("MetricKind", METRIC_KIND_LABELS)
MetricEvent = text_choices("MetricEvent", METRIC_EVENT_LABELS)
MetricValue = text_choices("MetricValue", METRIC_VALUE_LABELS)

# Outcomes after which an item is never served to that user again.
ACTED_UPON_TYPES = tuple(OutcomeType(value) for value in ACTED_UPON_OUTCOME_TYPES)


class Impression(models.Model):
    """One item served in one deck. Written only by the deck SQL function, which tags
    `request_context.experiments` with the user's variants in the same transaction."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_index=False, related_name="+"
    )
    rec_request_id = models.UUIDField(default=uuid.uuid4)
    media_item = models.ForeignKey(
        "deck.MediaItem", on_delete=models.CASCADE, db_index=False, related_name="+"
    )
    position = models.SmallIntegerField()
    source = models.TextField()
    request_context = models.JSONField(default=dict)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "rec_impressions"
        indexes = [
            models.Index(fields=["user", "-created_at"], name="idx_rec_impressions_user_time"),
            models.Index(
                fields=["rec_request_id", "media_item"], name="idx_rec_impressions_request"
            ),
            models.Index(fields=["media_item"], name="idx_rec_impressions_item"),
            models.Index(fields=["created_at"], name="idx_rec_impressions_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(position__gte=1), name="rec_impressions_position_from_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rec_request_id} #{self.position}: {self.media_item_id}"


class Outcome(models.Model):
    """What the user did with an item. `event_id` is the client's id: a repeat is stored once.
    Ids are unique per user, so one user's ids can neither collide with nor reveal another's."""

    id = models.BigAutoField(primary_key=True)
    event_id = models.TextField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_index=False, related_name="+"
    )
    rec_request_id = models.UUIDField()
    media_item = models.ForeignKey(
        "deck.MediaItem", on_delete=models.CASCADE, db_index=False, related_name="+"
    )
    outcome_type = models.TextField(choices=OutcomeType.choices)
    value = models.FloatField(null=True, blank=True)
    occurred_at = models.DateTimeField(db_default=Now())
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "rec_outcomes"
        indexes = [
            models.Index(fields=["user", "media_item"], name="idx_rec_outcomes_user_item"),
            models.Index(fields=["rec_request_id", "media_item"], name="idx_rec_outcomes_request"),
            models.Index(fields=["media_item"], name="idx_rec_outcomes_item"),
            models.Index(fields=["created_at"], name="idx_rec_outcomes_created"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "event_id"], name="rec_outcomes_user_event_uniq"
            ),
            models.CheckConstraint(
                condition=models.Q(outcome_type__in=OutcomeType.values),
                name="rec_outcomes_type_check",
            ),
            # A rating carries 0.5-5 in 0.5 steps; every other type carries no value.
            models.CheckConstraint(
                condition=(
                    models.Q(outcome_type="rating", value__gte=0.5, value__lte=5)
                    | (~models.Q(outcome_type="rating") & models.Q(value__isnull=True))
                ),
                name="rec_outcomes_value_check",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id}: {self.outcome_type}"


class Conversion(models.Model):
    """A custom event with a value (a purchase, watch time), recorded by the app through
    telemetry.services.conversions_record. `event_id` is the client's id, unique per user: a
    repeat is stored once. `request_context.experiments` holds the user's variants in force at
    `occurred_at` (rec_experiments_at), written in the same transaction."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_index=False, related_name="+"
    )
    event_id = models.TextField()
    metric_name = models.TextField()
    value = models.FloatField()
    metadata = models.JSONField(default=dict)
    occurred_at = models.DateTimeField()
    request_context = models.JSONField(default=dict)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "rec_conversions"
        indexes = [
            models.Index(fields=["user", "occurred_at"], name="idx_rec_conversions_user"),
            models.Index(fields=["metric_name", "occurred_at"], name="idx_rec_conversions_metric"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "event_id"], name="rec_conversions_user_event_uniq"
            ),
            models.CheckConstraint(
                condition=models.Q(metric_name__regex=KEY_PATTERN),
                name="rec_conversions_metric_name_check",
            ),
            # Finite: NaN sorts above every number in PostgreSQL, so it fails `< infinity`.
            models.CheckConstraint(
                condition=models.Q(value__gt=float("-inf"), value__lt=float("inf")),
                name="rec_conversions_value_finite",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id}: {self.metric_name}={self.value}"


class AlertThreshold(models.Model):
    """When a daily telemetry alert fires (rec_alerts_daily_metrics_v1 reads this table)."""

    class FiresWhen(models.TextChoices):
        ABOVE = "above", "value above threshold"
        AT_MOST = "at_most", "value at or below threshold"

    alert = models.TextField(primary_key=True)
    threshold = models.FloatField()
    fires_when = models.TextField(choices=FiresWhen.choices, default=FiresWhen.ABOVE)
    description = models.TextField()

    class Meta:
        db_table = "rec_alert_thresholds"
        ordering = ("alert",)
        constraints = [
            models.CheckConstraint(
                condition=models.Q(fires_when__in=["above", "at_most"]),
                name="rec_alert_thresholds_fires_when_check",
            ),
        ]

    def __str__(self) -> str:
        return self.alert


class Metric(models.Model):
    """A metric of the catalogue (docs/recsys-experiments.md, "Metrics and inference").

    - ratio: events of `numerator` / events of `denominator` per variant (likes per
      impression), variance by the delta method clustered by user;
    - mean: per exposed user, `value` of the `numerator` events (count, sum or mean of their
      values), Welch's t-test;
    - proportion: the share of exposed users with at least one `numerator` event.
    Outcomes count when they are joined to an impression of the variant."""

    id = models.BigAutoField(primary_key=True)
    key = models.TextField(unique=True, help_text="Slug: lowercase letters, digits, _")
    name = models.TextField(help_text="What the chart and the report call it")
    kind = models.TextField(choices=MetricKind.choices)
    numerator = models.TextField(choices=MetricEvent.choices)
    denominator = models.TextField(
        choices=MetricEvent.choices, null=True, blank=True, help_text="Ratio metrics only"
    )
    value = models.TextField(
        choices=MetricValue.choices,
        default="count",
        help_text="Mean metrics: what each user contributes",
    )
    description = models.TextField(blank=True, default="")

    class Meta:
        db_table = "rec_metrics"
        ordering = ("key",)
        constraints = [
            models.CheckConstraint(
                condition=models.Q(key__regex=KEY_PATTERN), name="rec_metrics_key_slug_check"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=MetricKind.values), name="rec_metrics_kind_check"
            ),
            models.CheckConstraint(
                condition=models.Q(numerator__in=MetricEvent.values),
                name="rec_metrics_numerator_check",
            ),
            models.CheckConstraint(
                condition=models.Q(denominator__isnull=True)
                | models.Q(denominator__in=MetricEvent.values),
                name="rec_metrics_denominator_check",
            ),
            # A ratio has a denominator; the other kinds have none.
            models.CheckConstraint(
                condition=models.Q(kind=RATIO, denominator__isnull=False)
                | (~models.Q(kind=RATIO) & models.Q(denominator__isnull=True)),
                name="rec_metrics_ratio_denominator_check",
            ),
            # Values are summed or averaged only for outcome types that carry one.
            models.CheckConstraint(
                condition=models.Q(value="count")
                | models.Q(value__in=["sum", "mean"], numerator__in=VALUED_OUTCOME_TYPES),
                name="rec_metrics_value_check",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        if self.kind == RATIO and not self.denominator:
            raise ValidationError({"denominator": "A ratio metric needs a denominator event."})
        if self.kind != RATIO and self.denominator:
            raise ValidationError({"denominator": "Only a ratio metric has a denominator."})
        if self.value != "count" and self.numerator not in VALUED_OUTCOME_TYPES:
            raise ValidationError(
                {"value": f"Only {', '.join(VALUED_OUTCOME_TYPES)} events carry a value."}
            )
        if self.kind == "proportion" and self.numerator == IMPRESSION:
            raise ValidationError({"numerator": "Every exposed user has an impression."})


class ExperimentMetric(models.Model):
    """A metric an experiment reports; at most one is its primary metric."""

    id = models.BigAutoField(primary_key=True)
    experiment = models.ForeignKey(
        "recsys_experiments.Experiment",
        on_delete=models.CASCADE,
        db_index=False,
        related_name="experiment_metrics",
    )
    metric = models.ForeignKey(
        Metric, on_delete=models.PROTECT, db_index=False, related_name="experiment_metrics"
    )
    is_primary = models.BooleanField(default=False)

    class Meta:
        db_table = "rec_experiment_metrics"
        ordering = ("-is_primary", "metric__key")
        indexes = [models.Index(fields=["metric"], name="idx_rec_exp_metrics_metric")]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "metric"], name="rec_experiment_metrics_uniq"
            ),
            models.UniqueConstraint(
                fields=["experiment"],
                condition=models.Q(is_primary=True),
                name="rec_experiment_metrics_one_primary",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric_id}{' (primary)' if self.is_primary else ''}"
