"""Answers the requests that never reach a view in good order, before and after Django:

- under /api/, a NUL byte in the path or the query string: 400 naming the parameter
  (PostgreSQL text cannot hold one, and no identifier of ours contains one; the admin handles
  its own, see admin_site.StorableTextModelAdmin);
- an API body larger than settings.API_MAX_BODY_BYTES (by its Content-Length): 413;
- the database unreachable, including before the view runs (ATOMIC_REQUESTS opens the
  connection first): 503 with Retry-After, and a plain "database unavailable" page in the admin;
- under /api/, every error Django answers itself (unknown path, its 400/413/500 pages, the
  DEBUG pages) becomes JSON in the API's one error shape.
"""

from __future__ import annotations

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

from recsys_experiments.lib.text import shown

from .errors import RETRY_AFTER_SECONDS, error_body

API_PREFIX = "/api/"


def is_api(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _nul_parameter(request) -> str | None:
    if "\x00" in request.path_info:
        return "path"
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return shown(name)
    return None


def _content_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


# Bytes of an oversized body read and thrown away before the 413, so that a client still
# sending gets the answer instead of a broken pipe; beyond this the connection just closes.
MAX_DISCARDED_BYTES = 64 * 1024 * 1024


def _discard_body(request) -> None:
    remaining = MAX_DISCARDED_BYTES
    while remaining > 0:
        chunk = request.read(min(remaining, 1 << 16))
        if not chunk:
            return
        remaining -= len(chunk)


def error_response(request, status: int, detail: str, field: str | None = None):
    """The API's JSON error for /api/ paths, a short plain page elsewhere."""
    if is_api(request):
        errors = {field: [detail]} if field else {}
        message = f"{field}: {detail}" if field else detail
        return JsonResponse(error_body(status, message, errors), status=status)
    text = f"{field}: {detail}" if field else detail
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


class RequestGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        nul_in = _nul_parameter(request) if is_api(request) else None
        if nul_in:
            return error_response(request, 400, "must not contain a NUL byte (\\x00)", nul_in)
        if is_api(request) and _content_length(request) > settings.API_MAX_BODY_BYTES:
            _discard_body(request)
            detail = f"the request body is larger than {settings.API_MAX_BODY_BYTES} bytes"
            return error_response(request, 413, detail)
        response = self.get_response(request)
        if is_api(request) and response.status_code >= 400 and not _is_json(response):
            return error_response(request, response.status_code, _reason(response))
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, OperationalError | InterfaceError):
            return database_unavailable(request)
        return None


def database_unavailable(request):
    if is_api(request):
        response = JsonResponse(
            error_body(503, "the database is unavailable; retry later"), status=503
        )
    else:
        response = HttpResponse(
            render_to_string("database_unavailable.html", {"retry_after": RETRY_AFTER_SECONDS}),
            status=503,
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def _reason(response) -> str:
    reasons = {
        400: "bad request",
        403: "forbidden",
        404: "no such API endpoint",
        405: "method not allowed",
        413: "the request body is too large",
        500: "internal server error",
    }
    return reasons.get(response.status_code, getattr(response, "reason_phrase", "error").lower())
