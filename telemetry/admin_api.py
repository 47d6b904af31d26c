from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response

from recsys_experiments.api.base import ServiceApi
from recsys_experiments.api.errors import days_param

from .selectors import telemetry_health


class TelemetryHealthApi(ServiceApi):
    """The same figures as `manage.py telemetry_health`. Staff only."""

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
                "daily": serializers.ListField(child=serializers.DictField()),
            },
        ),
    )
    def get(self, request):
        return Response(telemetry_health(days=days_param(request)))
