from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from recsys_experiments.api.base import EndUserApi
from recsys_experiments.api.throttling import OutcomesThrottle
from recsys_experiments.lib.errors import InvalidInput

from .models import OutcomeType
from .services import MAX_BATCH, MAX_EVENT_ID, outcomes_record

OUTCOME_ITEM_HELP = (
    "One outcome: an object with `event_id` (string, 1-{max_event_id} characters, chosen by "
    "the client; a repeat from the same user is stored once), `rec_request_id` (the UUID of "
    "the deck that served the item), `media_item_id` (integer), `outcome_type` ({types}), "
    "`value` (rating only: 0.5-5 in steps of 0.5) and `occurred_at` (optional ISO 8601 "
    "timestamp, default now; from 1970 to at most 5 minutes ahead). Strings must not contain "
    "NUL bytes or unpaired surrogates. Each item is judged on its own: a bad one is "
    "`rejected` in `results` with its reasons, the others are still stored."
).format(max_event_id=MAX_EVENT_ID, types=", ".join(OutcomeType.values))


class OutcomesApi(EndUserApi):
    """Report what the user did with served items. Each outcome is judged on its own: the
    accepted ones are stored even when others in the batch are rejected."""

    throttle_classes = (OutcomesThrottle,)
    # The parser leaves the items' text to the view, which rejects a bad item on its own.
    items_judged_alone = "outcomes"

    # Items are deliberately untyped in the schema: the server answers 200 for any item and
    # rejects a bad one on its own, so the schema must not call such an item forbidden.
    @extend_schema(
        tags=["deck"],
        request=inline_serializer(
            "OutcomeBatch",
            {
                "outcomes": serializers.ListField(
                    child=serializers.JSONField(help_text=OUTCOME_ITEM_HELP),
                    min_length=1,
                    max_length=MAX_BATCH,
                    help_text=f"1 to {MAX_BATCH} outcomes, each judged on its own.",
                )
            },
        ),
        responses=inline_serializer(
            "OutcomeBatchResult",
            {
                "accepted": serializers.IntegerField(),
                "duplicate": serializers.IntegerField(),
                "rejected": serializers.IntegerField(),
                "results": inline_serializer(
                    "OutcomeResult",
                    {
                        "index": serializers.IntegerField(),
                        "event_id": serializers.CharField(
                            allow_null=True, help_text="null when the item's event_id is invalid"
                        ),
                        "status": serializers.ChoiceField(
                            choices=["accepted", "duplicate", "rejected"]
                        ),
                        "errors": serializers.DictField(
                            child=serializers.CharField(),
                            required=False,
                            help_text="rejected only: {field: reason}",
                        ),
                    },
                    many=True,
                ),
            },
        ),
    )
    def post(self, request):
        # Only the batch's shape can fail the request; items are checked one by one.
        body = request.data
        if not isinstance(body, dict) or "outcomes" not in body:
            raise InvalidInput({"outcomes": [f"required: a list of 1 to {MAX_BATCH} outcomes"]})
        outcomes = body["outcomes"]
        if not isinstance(outcomes, list) or not outcomes:
            raise InvalidInput({"outcomes": [f"must be a list of 1 to {MAX_BATCH} outcomes"]})
        if len(outcomes) > MAX_BATCH:
            raise InvalidInput({"outcomes": [f"at most {MAX_BATCH} outcomes per request"]})
        return Response(outcomes_record(user=request.user, outcomes=outcomes))
