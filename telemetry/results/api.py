"""The metrics endpoint: /api/v1/admin/experiments/<key>/metrics. Staff only, with the same
permission as the other admin experiment endpoints."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from recsys_experiments.api.admin_experiments import TAGS, AdminExperimentApi
from recsys_experiments.api.errors import days_param
from recsys_experiments.selectors import experiment_get

from .analysis import experiment_results


class ExperimentMetricsApi(AdminExperimentApi):
    """Per-variant exposure and conversion, lift versus control with 95% CI and p-value,
    sample ratio mismatch and guardrails, over the last `days` UTC days."""

    @extend_schema(
        tags=TAGS,
        parameters=[OpenApiParameter("days", int, required=False, description="default 7")],
        responses=inline_serializer(
            "ExperimentMetrics",
            {
                "experiment": serializers.CharField(),
                "days": serializers.IntegerField(),
                "control": serializers.CharField(),
                "srm": serializers.DictField(),
                "variants": serializers.ListField(child=serializers.DictField()),
                "comparisons": serializers.ListField(child=serializers.DictField()),
                "guardrails": serializers.ListField(child=serializers.DictField()),
                "guardrails_passed": serializers.BooleanField(),
            },
        ),
    )
    def get(self, request, key):
        return Response(experiment_results(experiment_get(key), days=days_param(request)))
