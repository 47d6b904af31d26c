"""Mobile authentication: log in for a token, log out (one token or all of them)."""

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from recsys_experiments.api.fields import StrictCharField
from recsys_experiments.api.throttling import LoginAddressThrottle, LoginUsernameThrottle
from recsys_experiments.lib.errors import InvalidInput

from .authentication import ApiTokenAuthentication
from .services import token_create, token_revoke, tokens_revoke_all

# An email is at most 254 characters; nothing longer can name an account.
MAX_LOGIN_LENGTH = 254
# Long enough for any passphrase, short enough that hashing it costs nothing.
MAX_PASSWORD_LENGTH = 1024


class TokenApi(APIView):
    """Exchange a username (or email) and password for a new API token. Rate-limited per
    username and per client address (429 with Retry-After), and locked for a while after
    repeated failures for one username from one address, like the admin login."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (LoginAddressThrottle, LoginUsernameThrottle)

    class TokenInputSerializer(serializers.Serializer):
        username = StrictCharField(help_text="username or email", max_length=MAX_LOGIN_LENGTH)
        password = StrictCharField(
            style={"input_type": "password"}, max_length=MAX_PASSWORD_LENGTH, trim_whitespace=False
        )

    @extend_schema(
        tags=["auth"],
        request=TokenInputSerializer,
        responses=inline_serializer(
            "TokenResult",
            {
                "token": serializers.CharField(help_text="send as `Authorization: Token <token>`"),
                "expiry": serializers.DateTimeField(
                    help_text="extended by every use; log in again after a 401"
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
        instance, key = token_create(user=user)
        return Response({"token": key, "expiry": instance.expiry})


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
