from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models.functions import Now


class MediaItem(models.Model):
    """A title the deck can serve."""

    title = models.TextField()
    genres = ArrayField(models.TextField(), default=list)
    year = models.IntegerField(null=True, blank=True)
    # Catalogue popularity, any non-negative scale (views, ratings count...).
    popularity = models.FloatField(default=0, db_default=0)
    # A stable id from the catalogue source, for idempotent loads.
    external_id = models.TextField(unique=True, null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "media_items"
        ordering = ("id",)
        indexes = [
            models.Index(fields=["-popularity"], name="idx_media_items_popularity"),
            models.Index(fields=["-year"], name="idx_media_items_year"),
            GinIndex(fields=["genres"], name="idx_media_items_genres"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(popularity__gte=0), name="media_items_popularity_check"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title


class CfReco(models.Model):
    """A collaborative-filtering score for (user, item), computed offline."""

    pk = models.CompositePrimaryKey("user_id", "media_item_id")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_index=False, related_name="+"
    )
    media_item = models.ForeignKey(MediaItem, on_delete=models.CASCADE, related_name="+")
    score = models.FloatField()
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "cf_recos"

    def __str__(self) -> str:
        return f"{self.user_id} {self.media_item_id}: {self.score:.3f}"


class UserGenrePreference(models.Model):
    """How much a user likes a genre (weight >= 0, any scale; normalised per user)."""

    pk = models.CompositePrimaryKey("user_id", "genre")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_index=False, related_name="+"
    )
    genre = models.TextField()
    weight = models.FloatField()
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "recsys_user_prefs"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(weight__gte=0), name="recsys_user_prefs_weight_check"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.genre}: {self.weight}"


class UserSegment(models.Model):
    """A user's segment and traits, from a customer fixture (`manage.py load_fixture`)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    fixture = models.TextField()
    segment = models.TextField()
    traits = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "recsys_user_segments"
        indexes = [models.Index(fields=["fixture", "segment"], name="idx_user_segments_fixture")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.segment}"
