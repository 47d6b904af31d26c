from django.db import DatabaseError, connection, transaction
from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

HealthSerializer = inline_serializer(
    "Health",
    fields={"status": serializers.CharField(), "database": serializers.CharField()},
)


class HealthApi(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(responses={200: HealthSerializer, 503: HealthSerializer}, tags=["health"])
    def get(self, request):
        try:
            with connection.cursor() as cursor:
                cursor.execute("select 1")
        except DatabaseError:
            return Response({"status": "degraded", "database": "unavailable"}, status=503)
        return Response({"status": "ok", "database": "ok"})


# Not atomic: ATOMIC_REQUESTS would open the connection before the view runs and turn an
# unreachable database into a 500 page instead of this 503.
health_urlpattern = path(
    "api/health", transaction.non_atomic_requests(HealthApi.as_view()), name="health"
)
