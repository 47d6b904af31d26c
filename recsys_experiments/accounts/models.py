import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower, Now


class User(AbstractUser):
    """An app user or an admin. The UUID id is the user id in every table and SQL function."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The customer fixture (docs/fixtures.md) that created this account, if one did:
    # load_fixture updates and `--reset` deletes only the accounts its fixture created.
    created_by_fixture = models.TextField(null=True, blank=True, editable=False)
    # An app install's identity before sign-up or login (POST /api/v1/auth/anonymous): no
    # usable password, so it can only be reached through its tokens or its device id.
    is_anonymous_install = models.BooleanField(
        default=False, db_default=False, editable=False, verbose_name="anonymous install"
    )
    # SHA-256 of the install's secret device id (docs/security.md, "Anonymous identities"):
    # the same device id gets the same anonymous user again. Cleared at sign-up or merge.
    device_id_digest = models.TextField(null=True, blank=True, editable=False)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        constraints = [
            # Admins find users by email, so an email names at most one user.
            models.UniqueConstraint(
                Lower("email"),
                condition=~models.Q(email=""),
                name="accounts_user_email_ci_unique",
            ),
            models.UniqueConstraint(
                fields=["device_id_digest"], name="accounts_user_device_id_digest_unique"
            ),
            # Only an anonymous install is found by its device id.
            models.CheckConstraint(
                condition=models.Q(device_id_digest__isnull=True)
                | models.Q(is_anonymous_install=True),
                name="accounts_user_device_id_anonymous_only",
            ),
        ]


class MergeKind(models.TextChoices):
    LOGIN = "login", "Logged in: rows moved into the account"
    SIGNUP = "signup", "Signed up: the anonymous user became the account"


class IdentityMerge(models.Model):
    """The audit entry of one anonymous identity ending in an account (accounts.merge),
    written in the transaction that merged it, with how many rows of each table moved."""

    id = models.BigAutoField(primary_key=True)
    kind = models.TextField(choices=MergeKind.choices)
    anonymous_user = models.ForeignKey(
        User, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    account = models.ForeignKey(
        User, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # {table: {"moved": n, "kept_account": n, "renamed": n, "dropped": n}}
    counts = models.JSONField(default=dict)
    source = models.TextField(default="api")
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "accounts_identity_merge"
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=["anonymous_user"], name="idx_accounts_merge_anonymous"),
            models.Index(fields=["account", "-created_at"], name="idx_accounts_merge_account"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=MergeKind.values), name="accounts_merge_kind_check"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.anonymous_user_id} -> {self.account_id}"
