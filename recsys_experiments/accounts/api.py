"""Mobile authentication: an anonymous identity for a new install, sign-up, log in for a
token (either of the last two may carry the install's anonymous token, whose data then joins
the account), log out (one token or all of them)."""

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied, Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from recsys_experiments.api.errors import json_object_body
from recsys_experiments.api.fields import StrictCharField, StrictRegexField, strict
from recsys_experiments.api.throttling import (
    AnonymousAddressThrottle,
    LoginAddressThrottle,
    LoginUsernameThrottle,
    SignupAddressThrottle,
)
from recsys_experiments.lib.errors import IllegalTransition, InvalidInput

from .authentication import ApiTokenAuthentication
from .services import (
    ANONYMOUS_USERNAME_PREFIX,
    account_signup,
    anonymous_user_get_or_create,
    anonymous_user_merge,
    token_create,
    token_revoke,
    tokens_revoke_all,
)

# An email is at most 254 characters; nothing longer can name an account.
MAX_LOGIN_LENGTH = 254
# Long enough for any passphrase, short enough that hashing it costs nothing.
MAX_PASSWORD_LENGTH = 1024
# Knox keys are 64 characters; anything longer is refused before any lookup.
MAX_TOKEN_LENGTH = 128
# A device id is the install's secret: 32 to 128 URL-safe characters (a UUIDv4, or 32 random
# bytes in base64url), with at least DEVICE_ID_MIN_DISTINCT different characters so that a
# constant or placeholder id (all zeros) is refused rather than shared by every broken client.
DEVICE_ID_PATTERN = r"^[A-Za-z0-9_-]{32,128}$"
DEVICE_ID_MIN_DISTINCT = 8
MERGE_FIELD_HELP = (
    "the install's anonymous token (from POST /api/v1/auth/anonymous): its assignments, "
    "impressions and outcomes join the account, and the anonymous token stops working. A "
    "revoked, expired or already merged token is a 401; another account's token a 400."
)
TOKEN_FIELDS = {
    "token": serializers.CharField(help_text="send as `Authorization: Token <token>`"),
    "expiry": serializers.DateTimeField(
        help_text="extended by every use; log in again after a 401"
    ),
}


StrictEmailField = strict(serializers.EmailField, str, described_as="an email address")


class TokenAuthenticateHeader:
    """Answer a bad anonymous token with 401 and `WWW-Authenticate: Token`; without this an
    endpoint with no authentication classes turns DRF's 401 into a 403."""

    def get_authenticate_header(self, request):
        return knox_header()


def knox_header() -> str:
    return ApiTokenAuthentication().authenticate_header(None)


def anonymous_user_from_token(key: str | None):
    """The anonymous user `key` is a live token of; 401 when it is no live token, 400 when it
    belongs to an account (only an anonymous identity can be merged)."""
    if key is None:
        return None
    try:
        user, _ = ApiTokenAuthentication().authenticate_credentials(key.encode())
    except AuthenticationFailed as error:
        raise AuthenticationFailed(
            {"anonymous_token": ["invalid, expired, revoked or already merged"]}
        ) from error
    if not user.is_anonymous_install:
        raise InvalidInput({"anonymous_token": ["is not an anonymous identity's token"]})
    return user


def already_merged(error: IllegalTransition) -> AuthenticationFailed:
    # Lost a race with another merge of the same identity: its token is revoked by now.
    return AuthenticationFailed({"anonymous_token": [error.message]})


def token_response(user, status_code=status.HTTP_200_OK, **extra) -> Response:
    instance, key = token_create(user=user)
    return Response(
        {"token": key, "expiry": instance.expiry, "user_id": str(user.pk), **extra},
        status=status_code,
    )


ANONYMOUS_RESULT = inline_serializer(
    "AnonymousTokenResult",
    {
        **TOKEN_FIELDS,
        "user_id": serializers.UUIDField(help_text="the anonymous user's id"),
        "created": serializers.BooleanField(
            help_text="true (201) for a new identity; false (200) when the device id had one"
        ),
    },
)


class AnonymousApi(APIView):
    """An identity for an app install before sign-up: a token for a new anonymous user, who
    gets decks, assignments and outcomes like any user (and the same row-level security).
    With `device_id` the same id always gives the same anonymous user (a reinstall or a retry
    keeps its variants): the device id is a secret of the install, never a hardware or
    advertising id, since whoever sends it gets a token for that identity. Rate-limited per
    client address."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (AnonymousAddressThrottle,)

    class AnonymousInputSerializer(serializers.Serializer):
        device_id = StrictRegexField(
            DEVICE_ID_PATTERN,
            required=False,
            error_messages={"invalid": "must be 32 to 128 characters: letters, digits, - and _"},
            help_text=(
                "optional: a random secret generated once per install (UUIDv4 or 32+ random "
                "URL-safe characters) and kept in the keychain/keystore"
            ),
        )

        def validate_device_id(self, value):
            if len(set(value)) < DEVICE_ID_MIN_DISTINCT:
                raise serializers.ValidationError(
                    "too predictable: generate 32+ random characters once per install"
                )
            return value

    @extend_schema(
        tags=["auth"],
        request=AnonymousInputSerializer,
        responses={201: ANONYMOUS_RESULT, 200: ANONYMOUS_RESULT},
    )
    def post(self, request):
        # No body at all is an empty object; `null`, a list or a string is a 400.
        serializer = self.AnonymousInputSerializer(data=json_object_body(request))
        serializer.is_valid(raise_exception=True)
        try:
            user, created = anonymous_user_get_or_create(
                device_id=serializer.validated_data.get("device_id")
            )
        except IllegalTransition as error:
            raise PermissionDenied(error.message) from error
        return token_response(
            user, status.HTTP_201_CREATED if created else status.HTTP_200_OK, created=created
        )


class TokenApi(TokenAuthenticateHeader, APIView):
    """Exchange a username (or email) and password for a new API token. Rate-limited per
    username and per client address (429 with Retry-After), and locked for a while after
    repeated failures for one username from one address, like the admin login. With
    `anonymous_token`, the install's anonymous data is merged into the account in the same
    transaction (docs/security.md, "Merging")."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (LoginAddressThrottle, LoginUsernameThrottle)

    class TokenInputSerializer(serializers.Serializer):
        username = StrictCharField(help_text="username or email", max_length=MAX_LOGIN_LENGTH)
        password = StrictCharField(
            style={"input_type": "password"}, max_length=MAX_PASSWORD_LENGTH, trim_whitespace=False
        )
        anonymous_token = StrictCharField(
            required=False, max_length=MAX_TOKEN_LENGTH, help_text=MERGE_FIELD_HELP
        )

    @extend_schema(
        tags=["auth"],
        request=TokenInputSerializer,
        responses=inline_serializer(
            "TokenResult",
            {
                **TOKEN_FIELDS,
                "user_id": serializers.UUIDField(),
                "merged": inline_serializer(
                    "MergeCounts",
                    {
                        "anonymous_user_id": serializers.UUIDField(),
                        "counts": serializers.DictField(
                            child=serializers.DictField(child=serializers.IntegerField()),
                            help_text="per table: moved, kept_account, renamed, dropped",
                        ),
                    },
                    allow_null=True,
                    help_text="only with anonymous_token: what joined the account",
                ),
            },
        ),
    )
    def post(self, request):
        serializer = self.TokenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        login = serializer.validated_data["username"]
        if "@" in login:
            match = get_user_model().objects.filter(email__iexact=login).first()
            login = match.username if match else login
        user = authenticate(request, username=login, password=serializer.validated_data["password"])
        if getattr(request, "axes_locked_out", False):
            minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
            raise Throttled(
                wait=settings.AXES_COOLOFF_TIME.total_seconds(),
                detail=(
                    f"Too many failed logins for this account from this address: "
                    f"try again in {minutes} minutes."
                ),
            )
        if user is None:
            raise InvalidInput({"password": ["unknown username/email or wrong password"]})
        anonymous = anonymous_user_from_token(serializer.validated_data.get("anonymous_token"))
        merged = None
        if anonymous is not None:
            try:
                merge = anonymous_user_merge(anonymous_user=anonymous, account=user)
            except IllegalTransition as error:
                raise already_merged(error) from error
            merged = {"anonymous_user_id": str(anonymous.pk), "counts": merge.counts}
        return token_response(user, merged=merged)


class SignupApi(TokenAuthenticateHeader, APIView):
    """Create an account and get its first token. With `anonymous_token` the install's
    anonymous user becomes the account itself (same user id: its assignments, impressions and
    outcomes stay as they are) and the anonymous token stops working. Rate-limited per client
    address; the password must pass the server's password rules (named in the 400)."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (SignupAddressThrottle,)

    class SignupInputSerializer(serializers.Serializer):
        username = StrictRegexField(
            r"^[\w.@+-]{1,150}$",
            max_length=150,
            help_text="1-150 letters, digits and @.+-_; not starting with `anon-`",
        )
        password = StrictCharField(
            style={"input_type": "password"}, max_length=MAX_PASSWORD_LENGTH, trim_whitespace=False
        )
        email = StrictEmailField(required=False, allow_blank=True, max_length=MAX_LOGIN_LENGTH)
        anonymous_token = StrictCharField(
            required=False, max_length=MAX_TOKEN_LENGTH, help_text=MERGE_FIELD_HELP
        )

        def validate_username(self, value):
            if value.lower().startswith(ANONYMOUS_USERNAME_PREFIX):
                raise serializers.ValidationError(
                    f"`{ANONYMOUS_USERNAME_PREFIX}` names anonymous identities"
                )
            return value

    @extend_schema(
        tags=["auth"],
        request=SignupInputSerializer,
        responses={
            201: inline_serializer(
                "SignupResult",
                {
                    **TOKEN_FIELDS,
                    "user_id": serializers.UUIDField(
                        help_text="with anonymous_token: the anonymous user's id, kept"
                    ),
                },
            )
        },
    )
    def post(self, request):
        serializer = self.SignupInputSerializer(data=json_object_body(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        anonymous = anonymous_user_from_token(data.get("anonymous_token"))
        try:
            user = account_signup(
                username=data["username"],
                password=data["password"],
                email=data.get("email", ""),
                anonymous_user=anonymous,
            )
        except IllegalTransition as error:
            raise already_merged(error) from error
        return token_response(user, status.HTTP_201_CREATED)


class LogoutApi(APIView):
    """Revoke the token this request was made with."""

    authentication_classes = (ApiTokenAuthentication,)
    permission_classes = (IsAuthenticated,)

    @extend_schema(tags=["auth"], request=None, responses={204: None})
    def post(self, request):
        token_revoke(token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllApi(APIView):
    """Revoke every token of the caller: log out on every device."""

    authentication_classes = (ApiTokenAuthentication,)
    permission_classes = (IsAuthenticated,)

    @extend_schema(tags=["auth"], request=None, responses={204: None})
    def post(self, request):
        tokens_revoke_all(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
