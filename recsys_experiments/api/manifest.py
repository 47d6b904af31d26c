from drf_spectacular.utils import OpenApiResponse, extend_schema

from recsys_experiments.api.base import EndUserApi
from recsys_experiments.api.caching import IF_NONE_MATCH, cached_response
from recsys_experiments.api.throttling import AssignmentsThrottle
from recsys_experiments.selectors import experiments_manifest

RULE_HELP = (
    "A GrowthBook experiment rule: key, variations (variant names), weights (normalised), "
    "coverage (the experiment's traffic), hashAttribute ('id': the user id), seed (the salt), "
    "hashVersion 2, namespace [name, start, end] when set, condition (platform and app_version "
    "as GrowthBook conditions) when targeted."
)


class ExperimentsManifestApi(EndUserApi):
    """The running experiments as a GrowthBook `features` payload: a GrowthBook SDK given it
    and the attributes {"id": <user id>, "platform", "app_version"} evaluates feature
    `<experiment key>` to the variant the server's hash assigns. Stored assignments (overrides,
    and variants kept after a definition change) are server-side facts it cannot carry:
    POST /api/v1/assignments answers with them. Cacheable by ETag."""

    throttle_classes = (AssignmentsThrottle,)

    @extend_schema(
        tags=["deck"],
        parameters=[IF_NONE_MATCH],
        responses={
            200: {
                "type": "object",
                "properties": {
                    "features": {
                        "type": "object",
                        "description": "{experiment_key: feature}",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {
                                "defaultValue": {"nullable": True},
                                "rules": {
                                    "type": "array",
                                    "items": {"type": "object", "description": RULE_HELP},
                                },
                            },
                        },
                    }
                },
                "required": ["features"],
            },
            304: OpenApiResponse(description="Not modified: the cached manifest still holds."),
        },
    )
    def get(self, request):
        return cached_response(request, experiments_manifest())
