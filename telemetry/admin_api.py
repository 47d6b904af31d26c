from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response

from recsys_experiments.api.base import ServiceApi
from recsys_experiments.api.errors import days_param

from .results.alerts import health_with_experiment_alerts


class TelemetryHealthApi(ServiceApi):
    """The same figures and alerts as `manage.py telemetry_health`. Staff only."""

    permission_classes = (IsAdminUser,)

    @extend_schema(
        tags=["admin: telemetry"],
        parameters=[OpenApiParameter("days", int, required=False, description="default 7")],
        responses=inline_serializer(
            "TelemetryHealth",
            {
                "days": serializers.IntegerField(),
                "healthy": serializers.BooleanField(),
                "impressions": serializers.IntegerField(),
                "impressions_missing_experiments": serializers.IntegerField(),
                "impressions_missing_experiments_share": serializers.FloatField(),
                "outcomes": serializers.IntegerField(),
                "outcomes_without_impression": serializers.IntegerField(),
                "outcomes_without_impression_share": serializers.FloatField(),
                "last_impression_at": serializers.DateTimeField(allow_null=True),
                "active_alerts": serializers.ListField(child=serializers.DictField()),
                "experiment_alerts": serializers.ListField(
                    child=serializers.DictField(),
                    help_text="sample ratio mismatch or failed guardrails of active "
                    "experiments (latest phase): experiment, alert, phase, value, message",
                ),
                "daily": serializers.ListField(child=serializers.DictField()),
            },
        ),
    )
    def get(self, request):
        return Response(health_with_experiment_alerts(days=days_param(request)))
