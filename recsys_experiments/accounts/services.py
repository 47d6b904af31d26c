"""API tokens: issue and revoke (django-rest-knox stores only their digest)."""

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from knox.models import AuthToken


@transaction.atomic
def token_create(*, user) -> tuple[AuthToken, str]:
    """A new token for `user` (one per device or app install) and its key, which is shown
    this once and never stored. The user's expired tokens are deleted, and beyond
    TOKEN_LIMIT_PER_USER live ones the oldest are revoked."""
    tokens = AuthToken.objects.filter(user=user)
    tokens.filter(expiry__lt=timezone.now()).delete()
    instance, key = AuthToken.objects.create(user=user)
    surplus = list(
        tokens.order_by("-created", "-digest").values_list("digest", flat=True)[
            settings.TOKEN_LIMIT_PER_USER :
        ]
    )
    if surplus:
        AuthToken.objects.filter(digest__in=surplus).delete()
    return instance, key


def token_revoke(*, token: AuthToken) -> None:
    token.delete()


def tokens_revoke_all(*, user) -> int:
    """Revoke every token of `user` (log out everywhere); returns how many there were."""
    deleted, _ = AuthToken.objects.filter(user=user).delete()
    return deleted
