"""Maps domain errors to HTTP: InvalidInput 400 (field -> reasons), NotFound 404,
IllegalTransition 409. Everything else goes to DRF's own handler."""

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from recsys_experiments.errors import IllegalTransition, InvalidInput, NotFound


def domain_exception_handler(exc, context):
    if isinstance(exc, InvalidInput | NotFound | IllegalTransition):
        # Like DRF's own handler: an error response never commits the request's writes.
        set_rollback()
    if isinstance(exc, InvalidInput):
        return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, NotFound):
        return Response({"detail": exc.message}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, IllegalTransition):
        return Response({"detail": exc.message}, status=status.HTTP_409_CONFLICT)
    return exception_handler(exc, context)


def json_object_body(request) -> dict:
    """The request body as a JSON object, or a 400 naming the body."""
    if not isinstance(request.data, dict):
        raise InvalidInput({"body": ["must be a JSON object"]})
    return request.data


def days_param(request, default: int = 7) -> int:
    days = request.query_params.get("days", str(default))
    if not days.isdigit() or not 1 <= int(days) <= 366:
        raise InvalidInput({"days": ["must be a whole number from 1 to 366"]})
    return int(days)
