"""Rate limits with 429 + Retry-After (DRF throttles), counted in the database cache so that
every gunicorn worker shares them (config/settings.py: CACHES, DATABASES["cache"]).

Rates come from settings.API_THROTTLE_RATES, read at each request; a rate of None turns that
limit off. Counter keys hold a hash of the login or address, never the raw value.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from recsys_experiments.lib.client_address import client_address


def request_client_address(request) -> str | None:
    """The caller's address (also django-axes' AXES_CLIENT_IP_CALLABLE); None if unknown."""
    return client_address(
        request.META.get("REMOTE_ADDR"),
        request.META.get("HTTP_X_FORWARDED_FOR"),
        settings.TRUSTED_PROXY_COUNT,
    )


def normalised_login(value: str) -> str:
    """The form a username or email is counted under: `Alice ` and `alice` are one login."""
    return value.strip().casefold()


class SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self):
        return settings.API_THROTTLE_RATES.get(self.scope)

    def identity(self, request, view) -> str | None:
        raise NotImplementedError

    def get_cache_key(self, request, view):
        identity = self.identity(request, view)
        if identity is None:
            return None
        digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest[:40]}


class LoginAddressThrottle(SettingsRateThrottle):
    """Login attempts from one client address, whatever the username."""

    scope = "login_address"

    def identity(self, request, view):
        return request_client_address(request) or "unknown"


class LoginUsernameThrottle(SettingsRateThrottle):
    """Login attempts for one username or email, from any address."""

    scope = "login_username"

    def identity(self, request, view):
        data = request.data
        login = data.get("username") if hasattr(data, "get") else None
        if isinstance(login, int | float) and not isinstance(login, bool):
            login = str(login)  # the serializer accepts numbers as text: count them alike
        if not isinstance(login, str) or not login.strip():
            return None  # nothing to guess a password for: the serializer answers 400
        return normalised_login(login)


class AnonymousAddressThrottle(SettingsRateThrottle):
    """Anonymous identities asked for from one client address: each may be a new account."""

    scope = "anonymous_address"

    def identity(self, request, view):
        return request_client_address(request) or "unknown"


class SignupAddressThrottle(AnonymousAddressThrottle):
    """Sign-ups from one client address."""

    scope = "signup_address"


class UserRateThrottle(SettingsRateThrottle):
    """Requests by one authenticated user (throttles run after authentication)."""

    def identity(self, request, view):
        if request.user and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return f"address:{request_client_address(request) or 'unknown'}"


class DeckThrottle(UserRateThrottle):
    scope = "deck"


class OutcomesThrottle(UserRateThrottle):
    scope = "outcomes"


class AssignmentsThrottle(UserRateThrottle):
    scope = "assignments"


class ExposuresThrottle(UserRateThrottle):
    scope = "exposures"


class ConversionsThrottle(UserRateThrottle):
    scope = "conversions"
