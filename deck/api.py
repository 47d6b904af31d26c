from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from recsys_experiments.api.base import EndUserApi
from recsys_experiments.api.fields import StrictChoiceField, StrictIntegerField, StrictRegexField
from recsys_experiments.api.throttling import DeckThrottle
from recsys_experiments.lib.targeting import APP_VERSION_PATTERN, PLATFORMS

from .services import deck_build


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
