import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Now

from recsys_experiments.lib.constants import ACTED_UPON_OUTCOME_TYPES, OUTCOME_TYPE_LABELS
from recsys_experiments.models import text_choices

OutcomeType = text_choices("OutcomeType", OUTCOME_TYPE_LABELS)

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
