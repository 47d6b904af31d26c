"""Admin assignment endpoints: look up, force and reset a user's variants. Staff only."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from recsys_experiments.selectors import experiment_get, user_assignments, user_find
from recsys_experiments.services.assignments import assignment_override, assignment_reset

from .base import ServiceApi
from .fields import StrictCharField
from .permissions import IsStaffWithModelPermission
from .serializers import AssignmentSerializer, UserAssignmentsSerializer

SOURCE = "api"
TAGS = ["admin: assignments"]


class AdminAssignmentApi(ServiceApi):
    permission_classes = (IsStaffWithModelPermission,)
    change_permission = "recsys_experiments.change_assignment"


class AssignmentListCreateApi(AdminAssignmentApi):
    class OverrideInputSerializer(serializers.Serializer):
        experiment_key = StrictCharField()
        user = StrictCharField(help_text="uuid, username or email")
        variant = StrictCharField()

    @extend_schema(
        tags=TAGS,
        parameters=[
            OpenApiParameter("user", str, required=True, description="uuid, username or email")
        ],
        responses=UserAssignmentsSerializer,
    )
    def get(self, request):
        return Response(user_assignments(user_find(request.query_params.get("user"))))

    @extend_schema(
        tags=TAGS, request=OverrideInputSerializer, responses={201: AssignmentSerializer}
    )
    def post(self, request):
        serializer = self.OverrideInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        experiment = experiment_get(serializer.validated_data["experiment_key"])
        user = user_find(serializer.validated_data["user"])
        assignment = assignment_override(
            experiment=experiment,
            user=user,
            variant=serializer.validated_data["variant"],
            actor=request.user,
            source=SOURCE,
        )
        return Response(
            {
                "experiment_key": experiment.key,
                "user": str(user.pk),
                "variant": assignment.variant,
                "assignment_mode": assignment.assignment_mode,
                "assigned_by": request.user.username,
                "assigned_at": assignment.assigned_at.isoformat(),
            },
            status=status.HTTP_201_CREATED,
        )


class AssignmentResetApi(AdminAssignmentApi):
    @extend_schema(tags=TAGS, responses={204: None})
    def delete(self, request, experiment_key, user_id):
        assignment_reset(
            experiment=experiment_get(experiment_key),
            user=user_find(str(user_id)),
            actor=request.user,
            source=SOURCE,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
