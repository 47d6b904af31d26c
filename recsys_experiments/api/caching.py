"""ETag / If-None-Match for answers a client caches (assignments, the experiments manifest)."""

from __future__ import annotations

import hashlib
import json

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.response import Response

# The schema of a cached answer, shared by every view that answers with cached_response.
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    location=OpenApiParameter.HEADER,
    required=False,
    description="the ETag of an earlier answer: 304 when it is still current",
)
NOT_MODIFIED = OpenApiResponse(description="Not modified: the cached answer still holds.")


def entity_tag(body) -> str:
    """A strong ETag: a hash of the whole answer, so any change to it is a new tag."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def if_none_match(header: str | None) -> set[str]:
    """The entity tags of an If-None-Match header (weak ones compared as strong: RFC 9110's
    weak comparison)."""
    if not header:
        return set()
    tags = set()
    for part in header.split(","):
        tag = part.strip()
        tags.add(tag[2:] if tag.startswith("W/") else tag)
    return tags


def cached_response(request, body) -> Response:
    """200 with the body, or 304 with no body when If-None-Match names its tag (or "*");
    either way with the ETag and `Cache-Control: private, no-cache` (revalidate each time)."""
    etag = entity_tag(body)
    cached = if_none_match(request.headers.get("If-None-Match"))
    response = Response(status=304) if etag in cached or "*" in cached else Response(body)
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response
