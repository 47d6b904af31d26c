"""API token authentication: django-rest-knox's tokens and semantics, in one statement.

Knox's TokenAuthentication costs two round trips per request (the token joined with its
user, then, in the view, the request's role) plus knox's ORM work. Here
`rec_token_authenticate` (accounts/sql/token_auth.v1.sql) finds the token by its lookup prefix
and digest, deletes it if it expired, extends a live one (knox's AUTO_REFRESH, at most once per
MIN_REFRESH_INTERVAL, capped by AUTO_REFRESH_MAX_TTL), returns its user and, for the views that
run as a database role (api/base.py RoleScopedApi sets `database_role`), switches the rest of
the transaction to that role with app.user_id = the token's user, as db_roles.py does.
Malformed keys are refused before any query."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from rest_framework import exceptions

# What knox issues: AUTH_TOKEN_CHARACTER_LENGTH lower-case hex characters.
TOKEN_PATTERN = re.compile(rb"[0-9a-f]{%d}" % knox_settings.AUTH_TOKEN_CHARACTER_LENGTH)

AUTHENTICATE = "select * from rec_token_authenticate(%s, %s, %s, %s, %s, %s, %s)"


def _user_from_row(text: str):
    """A user instance from accounts_user's row as to_jsonb gives it (every column; Django
    reads jsonb as text)."""
    row = json.loads(text)
    model = get_user_model()
    fields = model._meta.concrete_fields
    return model.from_db(
        connection.alias,
        [field.attname for field in fields],
        [field.to_python(row.get(field.column)) for field in fields],
    )


class ApiTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`. Without the header DRF answers 401 with
    `WWW-Authenticate: Token`; a bad, expired or revoked key, or an inactive user, is a 401 too.

    With `database_role` set (by the view, before authenticating) and the request in a
    transaction, the statement that finds the token also sets the role and app.user_id for
    the rest of the transaction; `previous_role` is then the pair in force before it."""

    database_role: str | None = None

    def __init__(self, database_role: str | None = None):
        self.database_role = database_role
        self.previous_role: tuple[str, str] | None = None

    def authenticate_credentials(self, token: bytes):
        # A NUL byte, non-UTF-8 bytes or a megabyte of text would otherwise reach the
        # database or knox's decoding and become a 500.
        if not TOKEN_PATTERN.fullmatch(token):
            raise exceptions.AuthenticationFailed("Invalid token.")
        key = token.decode("ascii")
        token_key, digest = key[: CONSTANTS.TOKEN_KEY_LENGTH], hash_token(key)
        role = self.database_role if connection.in_atomic_block else None
        with connection.cursor() as cursor:
            cursor.execute(
                AUTHENTICATE,
                [
                    token_key,
                    digest,
                    timezone.now(),
                    knox_settings.TOKEN_TTL if knox_settings.AUTO_REFRESH else None,
                    knox_settings.AUTO_REFRESH_MAX_TTL,
                    timedelta(seconds=knox_settings.MIN_REFRESH_INTERVAL),
                    role,
                ],
            )
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        user_row, created, expiry, previous_role, previous_user_id = row
        user = _user_from_row(user_row)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        auth_token = get_token_model()(
            digest=digest, token_key=token_key, user=user, created=created, expiry=expiry
        )
        auth_token._state.adding, auth_token._state.db = False, connection.alias  # as stored
        if role is not None:
            self.previous_role = (previous_role, previous_user_id)
        return user, auth_token


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=knox_settings.AUTH_HEADER_PREFIX
        )
