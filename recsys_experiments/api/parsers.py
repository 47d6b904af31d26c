"""The API's only request parser: JSON, refused with a 400 or 413 naming the problem when it
is larger, deeper or stranger than any client of ours sends, before any view sees it."""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

from recsys_experiments.lib.text import json_problems, path_part, unstorable_text_reason


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "the request body is too large"


def _constant(name):
    raise ValueError(f"{name} is not a JSON number")


def body_problems(data, items_judged_alone: str | None = None) -> dict[str, list[str]]:
    """{field path: [reasons]} for text no database column can hold (a NUL, a lone surrogate)
    and for nesting or size beyond lib.text's bounds, anywhere in the body except the items
    of the batch field `items_judged_alone`, whose items the view judges one by one."""
    fields = data.items() if isinstance(data, dict) else [("body", data)]
    problems: dict[str, list[str]] = {}
    for name, value in fields:
        if unstorable_text_reason(name):
            problems.setdefault("body", []).append(
                "has a key that cannot be stored (a NUL or a lone surrogate)"
            )
            continue
        if name == items_judged_alone and isinstance(value, list):
            continue
        for path, reason in json_problems(value, path_part(name)):
            problems.setdefault(path, []).append(reason)
    return problems


class StrictJSONParser(JSONParser):
    """JSON with a size limit (settings.API_MAX_BODY_BYTES: 413), bounded nesting and only
    text the database can store (400 naming the path), and no NaN/Infinity."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
        try:
            data = json.loads(raw, parse_constant=_constant)
        except RecursionError as error:
            # Far deeper than lib.text.MAX_JSON_DEPTH, which names the field when it can.
            raise ParseError("body: nested too deeply") from error
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ParseError(f"body: not valid JSON ({error})") from error
        view = (parser_context or {}).get("view")
        problems = body_problems(data, getattr(view, "items_judged_alone", None))
        if problems:
            raise ParseError(problems)
        return data
