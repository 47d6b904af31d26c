from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from recsys_experiments.api.base import EndUserApi
from recsys_experiments.api.throttling import OutcomesThrottle
from recsys_experiments.errors import InvalidInput

from .models import OutcomeType
from .services import MAX_BATCH, outcomes_record


class OutcomeItemSerializer(serializers.Serializer):
    event_id = serializers.CharField(help_text="client-generated; a repeat is stored once")
    rec_request_id = serializers.UUIDField()
    media_item_id = serializers.IntegerField()
    outcome_type = serializers.ChoiceField(choices=OutcomeType.values)
    value = serializers.FloatField(required=False, help_text="rating only: 0.5-5, 0.5 steps")
    occurred_at = serializers.DateTimeField(required=False, help_text="default: now")


class OutcomesApi(EndUserApi):
    """Report what the user did with served items. Each outcome is judged on its own: the
    accepted ones are stored even when others in the batch are rejected."""

    throttle_classes = (OutcomesThrottle,)

    @extend_schema(
        tags=["deck"],
        request=inline_serializer("OutcomeBatch", {"outcomes": OutcomeItemSerializer(many=True)}),
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
                        "event_id": serializers.CharField(allow_null=True),
                        "status": serializers.ChoiceField(
                            choices=["accepted", "duplicate", "rejected"]
                        ),
                        "errors": serializers.DictField(
                            child=serializers.CharField(), required=False
                        ),
                    },
                    many=True,
                ),
            },
        ),
    )
    def post(self, request):
        body = request.data
        outcomes = body.get("outcomes") if isinstance(body, dict) else None
        if not isinstance(outcomes, list) or not outcomes:
            raise InvalidInput({"outcomes": ["required: a non-empty list of outcomes"]})
        if len(outcomes) > MAX_BATCH:
            raise InvalidInput({"outcomes": [f"at most {MAX_BATCH} outcomes per request"]})
        not_objects = [i for i, item in enumerate(outcomes) if not isinstance(item, dict)]
        if not_objects:
            raise InvalidInput({f"outcomes[{i}]": ["must be an object"] for i in not_objects})
        return Response(outcomes_record(user=request.user, outcomes=outcomes))
