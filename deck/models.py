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


BINDING_KINDS = ("namespace", "segment")


class RankingProfile(models.Model):
    """A named, versioned set of ranking knobs (docs/deck.md, "Ranking profiles").

    `knobs` is a partial or complete set of lib/knobs.py knobs laid over the built-in
    defaults. `bindings` lists the users it applies to: `{"segment": s}` or
    `{"namespace": n}` (a user's segment and fixture in recsys_user_segments). Database
    triggers (deck/sql/profiles.v1.sql) keep `version` (+1 on every change), the binding
    index `rec_ranking_profile_bindings` (one profile per binding) and the history
    `rec_ranking_profile_versions`: write through deck.profiles.ranking_profile_save."""

    name = models.SlugField(max_length=64, unique=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    knobs = models.JSONField(default=dict, blank=True)
    bindings = models.JSONField(default=list, blank=True)
    is_default = models.BooleanField(default=False)
    updated_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )

    class Meta:
        db_table = "rec_ranking_profiles"
        ordering = ("-is_default", "name")
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="rec_ranking_profiles_one_default",
            ),
            models.CheckConstraint(
                condition=models.Q(version__gte=1), name="rec_ranking_profiles_version_from_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class RankingProfileBinding(models.Model):
    """One binding of a profile, kept by a trigger from RankingProfile.bindings: the unique
    (kind, value) makes a binding belong to at most one profile, and is the deck's index."""

    profile = models.ForeignKey(RankingProfile, on_delete=models.CASCADE, related_name="+")
    kind = models.TextField(choices=[(kind, kind) for kind in BINDING_KINDS])
    value = models.TextField()

    class Meta:
        db_table = "rec_ranking_profile_bindings"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "value"], name="rec_ranking_profile_bindings_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}={self.value}"


class RankingProfileVersion(models.Model):
    """The audit trail: one row per saved version of a profile, written by a trigger in the
    transaction of the save. Kept (profile set null, name kept) when the profile is deleted."""

    profile = models.ForeignKey(
        RankingProfile, on_delete=models.SET_NULL, null=True, related_name="versions"
    )
    name = models.TextField()
    version = models.PositiveIntegerField()
    knobs = models.JSONField()
    bindings = models.JSONField()
    is_default = models.BooleanField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    changed_at = models.DateTimeField()

    class Meta:
        db_table = "rec_ranking_profile_versions"
        ordering = ("-changed_at", "-version")
        constraints = [
            models.UniqueConstraint(
                fields=["profile", "version"], name="rec_ranking_profile_versions_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"
