from django.contrib.auth import authenticate, get_user_model
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from recsys_experiments.api.fields import StrictCharField
from recsys_experiments.errors import InvalidInput


class TokenApi(APIView):
    """Exchange a username (or email) and password for the API token."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    class TokenInputSerializer(serializers.Serializer):
        username = StrictCharField(help_text="username or email")
        password = StrictCharField(style={"input_type": "password"})

    @extend_schema(
        tags=["auth"],
        request=TokenInputSerializer,
        responses=inline_serializer("TokenResult", {"token": serializers.CharField()}),
    )
    def post(self, request):
        serializer = self.TokenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        login = serializer.validated_data["username"]
        if "@" in login:
            match = get_user_model().objects.filter(email__iexact=login).first()
            login = match.username if match else login
        user = authenticate(request, username=login, password=serializer.validated_data["password"])
        if user is None:
            raise InvalidInput({"password": ["unknown username/email or wrong password"]})
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
