"""Targeting rules (platform and app-version bounds), the twin of the SQL targeting check."""

from __future__ import annotations

import re

from .constants import PLATFORMS  # noqa: F401 - re-exported: the rules check against it

# [0-9], not \d (which also matches digits such as '٣' that the SQL twin does not read), and
# anchored with \A ... \Z, so that match, fullmatch and search (DRF's RegexField) all refuse a
# trailing newline, which `$` lets through.
APP_VERSION_PATTERN = re.compile(r"\A[0-9]{1,9}(?:\.[0-9]{1,9}){0,3}\Z")


def app_version_key(version: str) -> tuple[int, ...]:
    """Numeric dotted parts with trailing zeros dropped, so 1.10 == 1.10.0 > 1.9.2."""
    parts = [int(part) for part in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def is_targeted(
    *,
    platform: str | None,
    min_app_version: str | None,
    max_app_version: str | None,
    request_platform: str | None,
    request_app_version: str | None,
) -> bool:
    """Whether a request matches an experiment's targeting; bounds are inclusive.

    A rule the request cannot answer (no platform, no app version) does not match.
    """
    if platform is not None and request_platform != platform:
        return False
    if min_app_version is None and max_app_version is None:
        return True
    if request_app_version is None or not APP_VERSION_PATTERN.fullmatch(request_app_version):
        return False
    version = app_version_key(request_app_version)
    if min_app_version is not None and version < app_version_key(min_app_version):
        return False
    return not (max_app_version is not None and version > app_version_key(max_app_version))
