from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from recsys_experiments.api.base import EndUserApi
from recsys_experiments.api.throttling import (
    ConversionsThrottle,
    ExposuresThrottle,
    OutcomesThrottle,
)
from recsys_experiments.lib.errors import InvalidInput
from recsys_experiments.lib.targeting import APP_VERSION_PATTERN, PLATFORMS

from .models import OutcomeType
from .services import (
    MAX_BATCH,
    MAX_EVENT_ID,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    conversions_record,
    exposures_record,
    outcomes_record,
)

OUTCOME_ITEM_HELP = (
    "One outcome: an object with `event_id` (string, 1-{max_event_id} characters, chosen by "
    "the client; a repeat from the same user is stored once), `rec_request_id` (the UUID of "
    "the deck that served the item), `media_item_id` (integer), `outcome_type` ({types}), "
    "`value` (rating only: 0.5-5 in steps of 0.5) and `occurred_at` (optional ISO 8601 "
    "timestamp, default now; from 1970 to at most 5 minutes ahead). Strings must not contain "
    "NUL bytes or unpaired surrogates. Each item is judged on its own: a bad one is "
    "`rejected` in `results` with its reasons, the others are still stored."
).format(max_event_id=MAX_EVENT_ID, types=", ".join(OutcomeType.values))


def _batch_result(name: str):
    """The response of a batch judged item by item: `{name}BatchResult`."""
    return inline_serializer(
        f"{name}BatchResult",
        {
            "accepted": serializers.IntegerField(),
            "duplicate": serializers.IntegerField(),
            "rejected": serializers.IntegerField(),
            "results": inline_serializer(
                f"{name}Result",
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
    )


def _batch(body, field: str) -> list:
    """The batch list of `body`; only its shape can fail the request (InvalidInput)."""
    if not isinstance(body, dict) or field not in body:
        raise InvalidInput({field: [f"required: a list of 1 to {MAX_BATCH} {field}"]})
    items = body[field]
    if not isinstance(items, list) or not items:
        raise InvalidInput({field: [f"must be a list of 1 to {MAX_BATCH} {field}"]})
    if len(items) > MAX_BATCH:
        raise InvalidInput({field: [f"at most {MAX_BATCH} {field} per request"]})
    return items


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
        responses=_batch_result("Outcome"),
    )
    def post(self, request):
        # Only the batch's shape can fail the request; items are checked one by one.
        outcomes = _batch(request.data, "outcomes")
        return Response(outcomes_record(user=request.user, outcomes=outcomes))


CONVERSION_ITEM_HELP = (
    f"One conversion: an object with `event_id` (string, 1-{MAX_EVENT_ID} characters, chosen by "
    "the client; a repeat from the same user is stored once), `metric_name` (2-63 lowercase "
    "letters, digits and _, such as `purchase` or `watch_seconds`; the name a catalogue metric "
    "refers to), `value` (a finite number: revenue, seconds, 1 for a plain count), "
    f"`metadata` (optional object, at most {MAX_METADATA_BYTES} bytes of JSON and "
    f"{MAX_METADATA_DEPTH} levels deep; stored, not analysed) and `occurred_at` (optional "
    "ISO 8601 timestamp, default now; "
    "from 1970 to at most 5 minutes ahead). The conversion is attributed to the variants the "
    "user was in at `occurred_at`. Strings must not contain NUL bytes or unpaired surrogates. "
    "Each item is judged on its own: a bad one is `rejected` in `results` with its reasons, "
    "the others are still stored."
)


class ConversionsApi(EndUserApi):
    """Record custom events with a value (a purchase, watch time) for the signed-in user. Each
    conversion is judged on its own, as outcomes are. They are always the caller's: a
    `user_id` in the body is refused (the whole request, 400), one inside an item rejects that
    item (not a conversion field)."""

    throttle_classes = (ConversionsThrottle,)
    items_judged_alone = "conversions"

    @extend_schema(
        tags=["deck"],
        request=inline_serializer(
            "ConversionBatch",
            {
                "conversions": serializers.ListField(
                    child=serializers.JSONField(help_text=CONVERSION_ITEM_HELP),
                    min_length=1,
                    max_length=MAX_BATCH,
                    help_text=f"1 to {MAX_BATCH} conversions, each judged on its own.",
                )
            },
        ),
        responses=_batch_result("Conversion"),
    )
    def post(self, request):
        if isinstance(request.data, dict) and "user_id" in request.data:
            raise InvalidInput(
                {"user_id": ["must be left out: conversions are recorded for the signed-in user"]}
            )
        conversions = _batch(request.data, "conversions")
        return Response(conversions_record(user=request.user, conversions=conversions))


EXPOSURE_ITEM_HELP = (
    f"One exposure: an object with `event_id` (string, 1-{MAX_EVENT_ID} characters, chosen by "
    "the client; a repeat from the same user is stored once), `experiment_key` (an active "
    "experiment the user is in), `variant` (optional: the variant the app showed; rejected "
    "when it is not the user's) and `occurred_at` (optional ISO 8601 timestamp, default now; "
    "from 1970 to at most 5 minutes ahead). Each item is judged on its own."
)


class ExposuresApi(EndUserApi):
    """Record that the app showed the user their variant of an app-side experiment. Exposed
    users count in the experiment's results like users with tagged impressions."""

    throttle_classes = (ExposuresThrottle,)
    items_judged_alone = "exposures"

    @extend_schema(
        tags=["deck"],
        request=inline_serializer(
            "ExposureBatch",
            {
                "exposures": serializers.ListField(
                    child=serializers.JSONField(help_text=EXPOSURE_ITEM_HELP),
                    min_length=1,
                    max_length=MAX_BATCH,
                    help_text=f"1 to {MAX_BATCH} exposures, each judged on its own.",
                ),
                "platform": serializers.ChoiceField(
                    choices=PLATFORMS,
                    required=False,
                    allow_null=True,
                    help_text="the device's platform, for targeted experiments",
                ),
                "app_version": serializers.RegexField(
                    APP_VERSION_PATTERN,
                    required=False,
                    allow_null=True,
                    help_text="the app's version (dotted digits), for targeted experiments",
                ),
            },
        ),
        responses=_batch_result("Exposure"),
    )
    def post(self, request):
        body = request.data
        if not isinstance(body, dict) or "exposures" not in body:
            raise InvalidInput({"exposures": [f"required: a list of 1 to {MAX_BATCH} exposures"]})
        unknown = sorted(set(body) - {"exposures", "platform", "app_version"})
        if unknown:
            raise InvalidInput({name: ["is not a field of an exposure batch"] for name in unknown})
        exposures = body["exposures"]
        if not isinstance(exposures, list) or not exposures:
            raise InvalidInput({"exposures": [f"must be a list of 1 to {MAX_BATCH} exposures"]})
        if len(exposures) > MAX_BATCH:
            raise InvalidInput({"exposures": [f"at most {MAX_BATCH} exposures per request"]})
        platform, app_version = body.get("platform"), body.get("app_version")
        if platform is not None and platform not in PLATFORMS:
            raise InvalidInput({"platform": [f"must be one of {', '.join(PLATFORMS)}"]})
        if app_version is not None and not (
            isinstance(app_version, str) and APP_VERSION_PATTERN.fullmatch(app_version)
        ):
            raise InvalidInput({"app_version": ["must be dotted digits such as 2.4.1"]})
        return Response(
            exposures_record(
                user=request.user, exposures=exposures, platform=platform, app_version=app_version
            )
        )
