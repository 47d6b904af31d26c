"""OpenAPI: every /api/v1/ operation documents the one error shape (api/errors.py) for each
status the API may answer with, so clients and schema-driven tests know them all."""

from __future__ import annotations

from .errors import CODE_BY_STATUS

ERROR_STATUSES = {
    400: "Invalid input: `errors` names each bad field and why.",
    401: "Not authenticated: send `Authorization: Token <key>`.",
    403: "Authenticated but not allowed (admin endpoints need staff).",
    404: "No such resource or endpoint.",
    405: "Method not allowed on this path.",
    406: "The Accept header asks for something other than JSON.",
    409: "Valid, but conflicts with the current state (e.g. ending a draft).",
    413: "The request body is larger than the limit.",
    415: "The body is not JSON (send `Content-Type: application/json`).",
    429: "Too many requests: wait `Retry-After` seconds.",
    503: "The database is unavailable: retry after `Retry-After` seconds.",
}
RETRY_AFTER = {
    "Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"},
}
ERROR_SCHEMA = {
    "type": "object",
    "description": "Every API error has this shape.",
    "properties": {
        "status": {"type": "integer", "description": "the HTTP status"},
        "code": {"type": "string", "enum": sorted(set(CODE_BY_STATUS.values()) | {"error"})},
        "detail": {"type": "string", "description": "one readable sentence"},
        "errors": {
            "type": "object",
            "description": "field path (`variants[1].weight`) -> reasons; empty when no field "
            "is at fault",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["status", "code", "detail", "errors"],
}


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                response = {"description": description, "content": reference}
                if status in {429, 503}:
                    response["headers"] = RETRY_AFTER
                existing = responses.setdefault(str(status), response)
                # An operation may describe its own 400/404 (which parameters): same shape.
                existing.setdefault("content", reference)
    return result
