import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower


class User(AbstractUser):
    """An app user or an admin. The UUID id is the user id in every table and SQL function."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The customer fixture (docs/fixtures.md) that created this account, if one did:
    # load_fixture updates and `--reset` deletes only the accounts its fixture created.
    created_by_fixture = models.TextField(null=True, blank=True, editable=False)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        constraints = [
            # Admins find users by email, so an email names at most one user.
            models.UniqueConstraint(
                Lower("email"),
                condition=~models.Q(email=""),
                name="accounts_user_email_ci_unique",
            ),
        ]
