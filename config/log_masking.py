"""Masks identifiers in log records: user UUIDs, emails, tokens, and the values of sensitive
query-string parameters (seed 003: observability without leaking identifiers).

UUIDs and emails become a short keyed hash (`uuid#1a2b3c4d`, `email#5e6f7a8b`): lines about
the same user can still be matched, but not traced back to the user without the key. Tokens
and sensitive values become `[redacted]`. Control characters are escaped, so a crafted URL
cannot forge log lines.

Used by Django's LOGGING (config/settings.py) and gunicorn's (config/gunicorn.conf.py); it
imports nothing from Django, since gunicorn's master process loads it before any app.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets

REDACTED = "[redacted]"
# Query-string and JSON keys whose values identify a person or grant access.
SENSITIVE_KEYS = (
    r"user|username|user_id|email|login|q|password|passwd|secret|token|auth_token|"
    r"access_token|refresh_token|api_key|key_digest|digest|session|sessionid|csrftoken"
)

# `Authorization: Token <key>` or `Bearer <key>` in any case, and token-like values after them.
AUTH_VALUE = re.compile(r"(?i)\b(token|bearer)(\s*[:=]?\s*)[A-Za-z0-9._~+/=-]{16,}")
KEY_VALUE = re.compile(rf"(?i)(?<![A-Za-z0-9_])({SENSITIVE_KEYS})(=)[^&\s\"';,]*")
JSON_VALUE = re.compile(rf'(?i)(["\']({SENSITIVE_KEYS})["\']\s*:\s*)("(?:[^"\\]|\\.)*"|\'[^\']*\')')
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
UUID = re.compile(
    r"(?i)(?<![0-9a-f])[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}(?![0-9a-f])"
)
# Knox tokens (64 hex), their digests (128 hex) and other long hex secrets.
LONG_HEX = re.compile(r"(?i)(?<![0-9a-f])[0-9a-f]{32,}(?![0-9a-f])")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
CONTROL_AND_NEWLINES = re.compile(r"[\x00-\x1f\x7f]")


def _key() -> bytes:
    # Derived from SECRET_KEY (read from the environment, as gunicorn's master has no Django
    # settings), so every worker hashes a user alike; a random key when there is none.
    secret = os.environ.get("SECRET_KEY") or secrets.token_hex(32)
    return hashlib.sha256(f"recsys-log-masking:{secret}".encode()).digest()


_KEY = _key()


def pseudonym(kind: str, value: str) -> str:
    digest = hmac.new(_KEY, value.lower().encode("utf-8", "replace"), hashlib.sha256)
    return f"{kind}#{digest.hexdigest()[:8]}"


def _escape(match: re.Match) -> str:
    return f"\\x{ord(match.group()):02x}"


def mask(text: str, *, multiline: bool = False) -> str:
    """`text` without raw identifiers. Single-line text also has its newlines escaped."""
    text = AUTH_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = JSON_VALUE.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)
    text = KEY_VALUE.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    text = EMAIL.sub(lambda m: pseudonym("email", m.group().replace("%40", "@")), text)
    text = UUID.sub(lambda m: pseudonym("uuid", m.group().replace("-", "")), text)
    text = LONG_HEX.sub(REDACTED, text)
    return (CONTROL if multiline else CONTROL_AND_NEWLINES).sub(_escape, text)


class MaskIdentifiers(logging.Filter):
    """Rewrites a record's message (and traceback) masked; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: the handler reports it
            return True
        record.msg, record.args = mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text, multiline=True)
        if record.stack_info:
            record.stack_info = mask(record.stack_info, multiline=True)
        return True
