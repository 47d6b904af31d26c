"""The API's only request parser: JSON, refused with a 400 or 413 naming the problem when it
is larger, deeper or stranger than any client of ours sends."""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "the request body is too large"


def _constant(name):
    raise ValueError(f"{name} is not a JSON number")


def first_body_problem(data, max_depth: int = MAX_DEPTH) -> tuple[str, str] | None:
    """(path, reason) of the first place a parsed JSON document is too deep or holds a lone
    surrogate, which no UTF-8 text (and so no database column) can carry; None when clean."""
    stack = [(data, "body", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > max_depth:
            return "body", f"nested more than {max_depth} levels deep"
        if isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                return path, "contains a lone surrogate (\\ud800-\\udfff): not valid Unicode text"
        elif isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path != "body" else str(key)
                stack.append((key, child, depth + 1))
                stack.append((item, child, depth + 1))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                child = f"{path}[{index}]" if path != "body" else f"body[{index}]"
                stack.append((item, child, depth + 1))
    return None


class StrictJSONParser(JSONParser):
    """JSON with a size limit (settings.API_MAX_BODY_BYTES: 413), a depth limit and valid
    Unicode text (400 naming the path), and no NaN/Infinity."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
        try:
            data = json.loads(raw, parse_constant=_constant)
        except RecursionError as error:
            raise ParseError(f"body: nested more than {MAX_DEPTH} levels deep") from error
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ParseError(f"body: not valid JSON ({error})") from error
        problem = first_body_problem(data)
        if problem:
            path, reason = problem
            raise ParseError({path: [reason]})
        return data
