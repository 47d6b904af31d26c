"""One shape for every API error, whichever layer raised it:

    {"status": 400, "code": "invalid", "detail": "variants[1].weight: must be > 0",
     "errors": {"variants[1].weight": ["must be > 0"]}}

`errors` maps a field path to its reasons (empty when no field is at fault); `detail` is one
readable sentence. Domain errors map to 400/404/409, DRF's own exceptions keep their status
and headers (401 with WWW-Authenticate, 429 with Retry-After), a value the database cannot
store is a 400, and an unreachable database a 503 with Retry-After. The middleware in
`api/middleware.py` gives errors raised outside DRF (unknown paths, oversized bodies, a
database that is down before the view runs) the same shape.
"""

from __future__ import annotations

from django.db import DataError, InterfaceError, OperationalError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from recsys_experiments.lib.errors import (
    IllegalTransition,
    InvalidInput,
    NotFound,
    describe_field_errors,
)

# Seconds a client should wait before retrying when the database is unavailable.
RETRY_AFTER_SECONDS = 5

CODE_BY_STATUS = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "throttled",
    500: "server_error",
    503: "service_unavailable",
}


def error_body(status_code: int, detail: str, errors: dict | None = None) -> dict:
    return {
        "status": status_code,
        "code": CODE_BY_STATUS.get(status_code, "error"),
        "detail": detail,
        "errors": errors or {},
    }


def field_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested validation detail as {field path: [reasons]}: `outcomes[2].event_id`."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = "body" if key in {"non_field_errors", "detail"} and not prefix else str(key)
            path = f"{prefix}.{name}" if prefix else name
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            flat.update(field_errors(value, path))
        return flat
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return {prefix or "body": [str(item) for item in detail]} if detail else {}
        flat = {}
        for index, item in enumerate(detail):
            flat.update(field_errors(item, f"{prefix}[{index}]"))
        return flat
    return {prefix or "body": [str(detail)]}


def api_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every error response in the one shape above."""
    if isinstance(exc, InvalidInput | NotFound | IllegalTransition | DataError | UnicodeError):
        # Like DRF's own handler: an error response never commits the request's writes.
        set_rollback()
    if isinstance(exc, InvalidInput):
        return Response(error_body(400, exc.message, exc.errors), status=400)
    if isinstance(exc, NotFound):
        return Response(error_body(404, exc.message), status=404)
    if isinstance(exc, IllegalTransition):
        return Response(error_body(409, exc.message), status=409)
    if isinstance(exc, DataError | UnicodeError):
        # The database refused a value (a NUL byte, a number out of range): the client's input.
        detail = "body: contains a value the database cannot store (NUL byte or out of range)"
        return Response(error_body(400, detail, {"body": [detail[6:]]}), status=400)
    if isinstance(exc, OperationalError | InterfaceError):
        return database_unavailable_response()
    response = exception_handler(exc, context)
    if response is None:
        return None
    detail = getattr(exc, "detail", "")
    if isinstance(detail, dict | list):
        errors = field_errors(detail)
        response.data = error_body(response.status_code, describe_field_errors(errors), errors)
    else:
        # A parse error is the body's fault; the others (401, 403, 404, 429...) no field's.
        errors = {"body": [str(detail)]} if isinstance(exc, exceptions.ParseError) else {}
        response.data = error_body(response.status_code, str(detail), errors)
    return response


def database_unavailable_response() -> Response:
    set_rollback()
    return Response(
        error_body(503, "the database is unavailable; retry later"),
        status=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def json_object_body(request) -> dict:
    """The request body as a JSON object, or a 400 naming the body."""
    if not isinstance(request.data, dict):
        raise InvalidInput({"body": ["must be a JSON object"]})
    return request.data


def days_param(request, default: int = 7) -> int:
    days = request.query_params.get("days", str(default))
    # isascii: str.isdigit() accepts '²' and other digits int() refuses.
    if not (days.isascii() and days.isdigit()) or not 1 <= int(days) <= 366:
        raise InvalidInput({"days": ["must be a whole number from 1 to 366"]})
    return int(days)
