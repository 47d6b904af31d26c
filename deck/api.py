from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from recsys_experiments.api.base import EndUserApi
from recsys_experiments.api.caching import IF_NONE_MATCH, NOT_MODIFIED, cached_response
from recsys_experiments.api.fields import StrictChoiceField, StrictIntegerField, StrictRegexField
from recsys_experiments.api.throttling import AssignmentsThrottle, DeckThrottle
from recsys_experiments.lib.constants import KEY_RE
from recsys_experiments.lib.targeting import APP_VERSION_PATTERN, PLATFORMS

from .services import assignments_get, deck_build

MAX_REQUESTED_EXPERIMENTS = 100
MAX_ATTRIBUTES = 50


class DeckItemSerializer(serializers.Serializer):
    media_item_id = serializers.IntegerField()
    title = serializers.CharField()
    genres = serializers.ListField(child=serializers.CharField())
    year = serializers.IntegerField(allow_null=True)
    position = serializers.IntegerField(help_text="1..n")
    source = serializers.ChoiceField(choices=["cf", "genre", "popularity", "freshness"])
    score = serializers.FloatField()


class DeckRankingSerializer(serializers.Serializer):
    profile = serializers.CharField(
        allow_null=True, help_text="the most specific ranking profile applied (null: none)"
    )
    profile_id = serializers.IntegerField(allow_null=True)
    version = serializers.IntegerField(allow_null=True, help_text="that profile's version")
    knobs_hash = serializers.CharField(
        help_text="sha256 (hex) of the final ranking knobs (profiles, then variant configs)"
    )


class DeckOutputSerializer(serializers.Serializer):
    rec_request_id = serializers.UUIDField()
    experiments = serializers.DictField(
        child=serializers.CharField(), help_text="{experiment_key: variant}"
    )
    ranking = DeckRankingSerializer(
        help_text="the knobs' provenance, as recorded on every impression of the deck"
    )
    items = DeckItemSerializer(many=True)


class DeckApi(EndUserApi):
    """A swipe deck for the caller; every served item is recorded as an impression tagged
    with the caller's experiment variants."""

    throttle_classes = (DeckThrottle,)

    class DeckInputSerializer(serializers.Serializer):
        limit = StrictIntegerField(min_value=1, max_value=50, default=20)
        platform = StrictChoiceField(choices=PLATFORMS, required=False, allow_null=True)
        app_version = StrictRegexField(
            APP_VERSION_PATTERN,
            required=False,
            allow_null=True,
            error_messages={"invalid": "must be dotted digits such as 2.4.1"},
        )

    @extend_schema(tags=["deck"], request=DeckInputSerializer, responses=DeckOutputSerializer)
    def post(self, request):
        serializer = self.DeckInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return Response(
            deck_build(
                user=request.user,
                limit=data["limit"],
                platform=data.get("platform"),
                app_version=data.get("app_version"),
            )
        )


class AppAssignmentSerializer(serializers.Serializer):
    variant = serializers.CharField()
    config = serializers.DictField(help_text="the variant's config, as defined")


class AssignmentsOutputSerializer(serializers.Serializer):
    assignments = serializers.DictField(
        child=AppAssignmentSerializer(),
        help_text="{experiment_key: {variant, config}}: the active experiments the caller is "
        "in; an experiment the caller is not eligible for (traffic, namespace, targeting) is "
        "absent",
    )
    knobs = serializers.DictField(
        help_text="the merged ranking knobs (built-in < default profile < bound profiles < "
        "variant configs), what the caller's next deck ranks with"
    )
    ranking = DeckRankingSerializer(help_text="the knobs' provenance, as on the deck")
    version = serializers.CharField(
        help_text="changes whenever an active experiment or a ranking profile changes"
    )


class AssignmentsApi(EndUserApi):
    """The caller's variants and their configs for app-side experiments, assigned (sticky)
    exactly as the deck assigns. Cacheable: the response carries an ETag; send it back in
    If-None-Match to get a 304 while nothing changed."""

    throttle_classes = (AssignmentsThrottle,)

    class AssignmentsInputSerializer(serializers.Serializer):
        experiments = serializers.ListField(
            child=StrictRegexField(KEY_RE, error_messages={"invalid": "must be an experiment key"}),
            required=False,
            allow_null=True,
            max_length=MAX_REQUESTED_EXPERIMENTS,
            help_text="only these experiment keys in the answer (default: all); each must be "
            "an active experiment",
        )
        platform = StrictChoiceField(choices=PLATFORMS, required=False, allow_null=True)
        app_version = StrictRegexField(
            APP_VERSION_PATTERN,
            required=False,
            allow_null=True,
            error_messages={"invalid": "must be dotted digits such as 2.4.1"},
        )
        attributes = serializers.DictField(
            required=False,
            allow_null=True,
            help_text="other attributes of the user or device (at most "
            f"{MAX_ATTRIBUTES}); accepted, not read by the current targeting rules "
            "(platform and app_version)",
        )

        def to_internal_value(self, data):
            if not isinstance(data, dict):
                raise serializers.ValidationError({"body": ["must be a JSON object"]})
            return super().to_internal_value(data)

        def validate_attributes(self, value):
            if value is not None and len(value) > MAX_ATTRIBUTES:
                raise serializers.ValidationError(f"at most {MAX_ATTRIBUTES} attributes")
            return value

    @extend_schema(
        tags=["deck"],
        request=AssignmentsInputSerializer,
        parameters=[IF_NONE_MATCH],
        responses={
            200: AssignmentsOutputSerializer,
            304: NOT_MODIFIED,
        },
    )
    def post(self, request):
        serializer = self.AssignmentsInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        body = assignments_get(
            user=request.user,
            experiments=data.get("experiments"),
            platform=data.get("platform"),
            app_version=data.get("app_version"),
        )
        return cached_response(request, body)
