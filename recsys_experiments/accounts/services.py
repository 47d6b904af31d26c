"""API tokens: issue and revoke (django-rest-knox stores only their digest); anonymous
identities: create, merge into an account at login, turn into an account at sign-up."""

import hashlib
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from knox.models import AuthToken

from recsys_experiments.db_roles import SERVICE_ROLE, acting_as
from recsys_experiments.lib.errors import IllegalTransition, InvalidInput

from .merge import count_rows, move_rows
from .models import IdentityMerge, MergeKind


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


# --- Anonymous identities (docs/security.md, "Anonymous identities") ---


# Anonymous users are named `anon-<32 hex>`; sign-up refuses usernames with this prefix.
ANONYMOUS_USERNAME_PREFIX = "anon-"


def device_id_digest(device_id: str) -> str:
    """What is stored of a device id: its SHA-256. The id is a random secret of the install,
    so a digest without salt or stretching cannot be reversed or guessed."""
    return hashlib.sha256(device_id.encode("utf-8")).hexdigest()


def _new_anonymous_user(digest: str | None):
    user = get_user_model()(
        username=f"{ANONYMOUS_USERNAME_PREFIX}{uuid.uuid4().hex}",
        is_anonymous_install=True,
        device_id_digest=digest,
    )
    user.set_unusable_password()
    user.save()
    return user


@transaction.atomic
def anonymous_user_get_or_create(*, device_id: str | None = None) -> tuple[object, bool]:
    """A new anonymous user, or the one already holding `device_id`; and whether it is new.
    Raises IllegalTransition when the device id belongs to a user an admin has disabled."""
    if device_id is None:
        return _new_anonymous_user(None), True
    digest = device_id_digest(device_id)
    users = get_user_model().objects
    existing = users.filter(device_id_digest=digest).first()
    if existing is None:
        try:
            with transaction.atomic():
                return _new_anonymous_user(digest), True
        except IntegrityError:
            # The same device id, created by a concurrent first request: the same identity.
            existing = users.get(device_id_digest=digest)
    if not existing.is_active:
        raise IllegalTransition("this anonymous identity is disabled")
    return existing, False


def _still_anonymous(user) -> bool:
    return user.is_active and user.is_anonymous_install


@transaction.atomic
def anonymous_user_merge(*, anonymous_user, account, source: str = "api") -> IdentityMerge:
    """Log-in with an anonymous token: move the anonymous user's rows into `account`
    (accounts.merge: the account's assignments win, client event ids that clash are renamed),
    then disable the anonymous user and revoke its tokens. One transaction; a second merge of
    the same anonymous user (concurrent or later) raises IllegalTransition."""
    User = get_user_model()
    if account.pk == anonymous_user.pk or not _is_account(account):
        raise InvalidInput({"anonymous_token": ["cannot be merged into this account"]})
    with acting_as(SERVICE_ROLE, account.pk):
        # Both rows locked in id order: merges of one anonymous user run one after the other.
        locked = {
            user.pk: user
            for user in User.objects.select_for_update()
            .filter(pk__in=[anonymous_user.pk, account.pk])
            .order_by("pk")
        }
        anonymous = locked.get(anonymous_user.pk)
        if anonymous is None or not _still_anonymous(anonymous):
            raise IllegalTransition("the anonymous identity was already merged or disabled")
        counts = _move_rows_retrying(anonymous_user_id=anonymous.pk, account_id=account.pk)
        User.objects.filter(pk=anonymous.pk).update(is_active=False, device_id_digest=None)
        AuthToken.objects.filter(user_id=anonymous.pk).delete()
        return IdentityMerge.objects.create(
            kind=MergeKind.LOGIN,
            anonymous_user_id=anonymous.pk,
            account=account,
            counts=counts,
            source=source,
        )


def _is_account(user) -> bool:
    return user.is_active and not user.is_anonymous_install


# A concurrent write by the account (an outcome with an event id being moved) can slip in
# between a conflict check and the move: the move's unique violation is retried from a
# savepoint, and the retry sees the account's new row.
MERGE_ATTEMPTS = 3


def _move_rows_retrying(*, anonymous_user_id, account_id) -> dict:
    for attempt in range(MERGE_ATTEMPTS):
        try:
            with transaction.atomic():
                return move_rows(anonymous_user_id=anonymous_user_id, account_id=account_id)
        except IntegrityError:
            if attempt == MERGE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def account_signup(
    *, username: str, password: str, email: str = "", anonymous_user=None, source: str = "api"
):
    """A new account. With an anonymous user, that user becomes the account in place (same
    id: its assignments, impressions and outcomes are simply kept); its anonymous tokens are
    revoked and its device id forgotten. Raises InvalidInput naming the field at fault."""
    User = get_user_model()
    users = User.objects
    if users.filter(username__iexact=username).exists():
        raise InvalidInput({"username": ["already taken"]})
    if email and users.filter(email__iexact=email).exists():
        raise InvalidInput({"email": ["already used by another account"]})
    if anonymous_user is None:
        user = User(username=username, email=email)
    else:
        user = users.select_for_update().filter(pk=anonymous_user.pk).first()
        if user is None or not _still_anonymous(user):
            raise IllegalTransition("the anonymous identity was already merged or disabled")
        user.username, user.email = username, email
    try:
        password_validation.validate_password(password, user)
    except ValidationError as error:
        raise InvalidInput({"password": list(error.messages)}) from error
    user.set_password(password)
    user.is_anonymous_install = False
    user.device_id_digest = None
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as error:
        # A concurrent sign-up took the username or the email first.
        raise InvalidInput({"username": ["already taken (or the email is in use)"]}) from error
    if anonymous_user is not None:
        with acting_as(SERVICE_ROLE, user.pk):
            AuthToken.objects.filter(user=user).delete()
            IdentityMerge.objects.create(
                kind=MergeKind.SIGNUP,
                anonymous_user=user,
                account=user,
                counts=count_rows(user_id=user.pk),
                source=source,
            )
    return user
