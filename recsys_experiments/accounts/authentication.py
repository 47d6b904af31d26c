"""API token authentication: django-rest-knox, with malformed keys refused before any query."""

import re

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication
from knox.settings import knox_settings
from rest_framework import exceptions

# What knox issues: AUTH_TOKEN_CHARACTER_LENGTH lower-case hex characters.
TOKEN_PATTERN = re.compile(rb"[0-9a-f]{%d}" % knox_settings.AUTH_TOKEN_CHARACTER_LENGTH)


class ApiTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`. Without the header DRF answers 401 with
    `WWW-Authenticate: Token`; a bad, expired or revoked key is a 401 too."""

    def authenticate_credentials(self, token: bytes):
        # A NUL byte, non-UTF-8 bytes or a megabyte of text would otherwise reach the
        # database or knox's decoding and become a 500.
        if not TOKEN_PATTERN.fullmatch(token):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(token)

    def _cleanup_token(self, auth_token) -> bool:
        # Knox also loads and deletes the user's other expired tokens on every request; that
        # cleanup happens at login instead (accounts.services.token_create).
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=knox_settings.AUTH_HEADER_PREFIX
        )
