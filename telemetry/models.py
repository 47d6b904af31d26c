import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Now

from recsys_experiments.lib.constants import (
    ACTED_UPON_OUTCOME_TYPES,
    CONVERSION,
    IMPRESSION,
    KEY_PATTERN,
    KEY_RE,
    METRIC_EVENT_LABELS,
    METRIC_KIND_LABELS,
    METRIC_VALUE_LABELS,
    OUTCOME_TYPE_LABELS,
    RATIO,
    VALUED_METRIC_EVENTS,
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


class Exposure(models.Model):
    """The app showed the user their variant of an experiment (an app-side experiment: an
    onboarding screen, a button colour). Written by `exposures_record`, which checks the variant
    is the user's and tags `request_context.experiments` with the user's variants then, as the
    deck tags impressions. `event_id` is the client's id, unique per user like an outcome's."""

    id = models.BigAutoField(primary_key=True)
    event_id = models.TextField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_index=False, related_name="+"
    )
    experiment = models.ForeignKey(
        "recsys_experiments.Experiment",
        on_delete=models.CASCADE,
        db_index=False,
        related_name="+",
    )
    variant = models.TextField()
    request_context = models.JSONField(default=dict)
    occurred_at = models.DateTimeField(db_default=Now())
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "rec_exposures"
        indexes = [
            models.Index(fields=["experiment", "occurred_at"], name="idx_rec_exposures_experiment"),
            models.Index(fields=["created_at"], name="idx_rec_exposures_created"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "event_id"], name="rec_exposures_user_event_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id}: {self.variant}"


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
    Outcomes count when they are joined to an impression of the variant. A `conversion` event
    names its conversion (`numerator_name`, `denominator_name`: rec_conversions.metric_name);
    conversions count for the variant their experiments tag names, in the window."""

    id = models.BigAutoField(primary_key=True)
    key = models.TextField(unique=True, help_text="Slug: lowercase letters, digits, _")
    name = models.TextField(help_text="What the chart and the report call it")
    kind = models.TextField(choices=MetricKind.choices)
    numerator = models.TextField(choices=MetricEvent.choices)
    numerator_name = models.TextField(
        null=True,
        blank=True,
        help_text="Conversion numerators only: the conversion's metric_name (such as purchase)",
    )
    denominator = models.TextField(
        choices=MetricEvent.choices, null=True, blank=True, help_text="Ratio metrics only"
    )
    denominator_name = models.TextField(
        null=True,
        blank=True,
        help_text="Conversion denominators only: the conversion's metric_name (such as "
        "add_to_cart)",
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
            # Values are summed or averaged only for events that carry one.
            models.CheckConstraint(
                condition=models.Q(value="count")
                | models.Q(value__in=["sum", "mean"], numerator__in=VALUED_METRIC_EVENTS),
                name="rec_metrics_value_check",
            ),
            # A conversion event names its conversion (a slug); no other event has a name.
            # (isnull=False: a regex test of NULL is NULL, which a CHECK lets through.)
            models.CheckConstraint(
                condition=models.Q(
                    numerator=CONVERSION,
                    numerator_name__isnull=False,
                    numerator_name__regex=KEY_PATTERN,
                )
                | (~models.Q(numerator=CONVERSION) & models.Q(numerator_name__isnull=True)),
                name="rec_metrics_numerator_name_check",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    denominator__isnull=False,
                    denominator=CONVERSION,
                    denominator_name__isnull=False,
                    denominator_name__regex=KEY_PATTERN,
                )
                | (
                    (models.Q(denominator__isnull=True) | ~models.Q(denominator=CONVERSION))
                    & models.Q(denominator_name__isnull=True)
                ),
                name="rec_metrics_denominator_name_check",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def numerator_key(self) -> str:
        """What the numerator counts: the event, or `conversion:<name>` for a conversion."""
        return _event_key(self.numerator, self.numerator_name)

    @property
    def denominator_key(self) -> str | None:
        return _event_key(self.denominator, self.denominator_name) if self.denominator else None

    @property
    def counts_label(self) -> str:
        """What the metric counts, in a few words for the results table: `like / impression`,
        `sum of purchase per user`, `users with ≥1 purchase`."""
        num = self.numerator_name or self.numerator
        if self.kind == RATIO:
            return f"{num} / {self.denominator_name or self.denominator}"
        if self.kind == "proportion":
            return f"users with ≥1 {num}"
        if self.value == "sum":
            return f"sum of {num} per user"
        if self.value == "mean":
            return f"mean {num} per user with one"
        return f"{num} per user"

    @property
    def conversion_names(self) -> set[str]:
        """The conversions (metric_name) the metric reads."""
        return {
            name
            for event, name in (
                (self.numerator, self.numerator_name),
                (self.denominator, self.denominator_name),
            )
            if event == CONVERSION and name
        }

    def clean(self):
        # A blank name in the admin form is no name.
        self.numerator_name = self.numerator_name or None
        self.denominator_name = self.denominator_name or None
        errors = {}
        if self.kind == RATIO and not self.denominator:
            errors["denominator"] = "A ratio metric needs a denominator event."
        if self.kind != RATIO and self.denominator:
            errors["denominator"] = "Only a ratio metric has a denominator."
        if self.value != "count" and self.numerator not in VALUED_METRIC_EVENTS:
            errors["value"] = f"Only {' and '.join(VALUED_METRIC_EVENTS)} events carry a value."
        if self.kind == "proportion" and self.numerator == IMPRESSION:
            errors["numerator"] = "Every exposed user has an impression."
        for field, event in (
            ("numerator_name", self.numerator),
            ("denominator_name", self.denominator),
        ):
            name = getattr(self, field)
            if event == CONVERSION and not name:
                errors[field] = (
                    "Name the conversion: the metric_name the app records (such as purchase)."
                )
            elif event != CONVERSION and name:
                errors[field] = "Only a conversion event has a name: leave this empty."
            elif name and not KEY_RE.match(name):
                errors[field] = (
                    "A conversion name is 2-63 lowercase letters, digits and _ "
                    "(such as add_to_cart), as the app records it."
                )
        if errors:
            raise ValidationError(errors)


def _event_key(event: str, name: str | None) -> str:
    return f"{CONVERSION}:{name}" if event == CONVERSION else event


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
