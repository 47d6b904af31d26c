"""Admin experiment endpoints: /api/v1/admin/experiments[...]. Staff only."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from recsys_experiments.lib.constants import EXPERIMENT_STATUSES
from recsys_experiments.selectors import (
    experiment_definition,
    experiment_get,
    experiment_list,
    experiment_representation,
)
from recsys_experiments.services.experiments import (
    experiment_activate,
    experiment_create,
    experiment_delete,
    experiment_duplicate,
    experiment_end,
    experiment_rotate_salt,
    experiment_update,
)

from .base import ServiceApi
from .errors import json_object_body
from .fields import StrictBooleanField, StrictCharField
from .permissions import IsStaffWithModelPermission
from .serializers import (
    ExperimentInputSerializer,
    ExperimentListItemSerializer,
    ExperimentOutputSerializer,
)

SOURCE = "api"
TAGS = ["admin: experiments"]


class AdminExperimentApi(ServiceApi):
    permission_classes = (IsStaffWithModelPermission,)
    change_permission = "recsys_experiments.change_experiment"


class ExperimentListCreateApi(AdminExperimentApi):
    change_permission = "recsys_experiments.add_experiment"

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(
            choices=EXPERIMENT_STATUSES,
            required=False,
            error_messages={"invalid_choice": f"must be one of {', '.join(EXPERIMENT_STATUSES)}"},
        )

    @extend_schema(
        tags=TAGS,
        parameters=[OpenApiParameter("status", enum=EXPERIMENT_STATUSES, required=False)],
        responses=ExperimentListItemSerializer(many=True),
    )
    def get(self, request):
        # A plain dict: DRF reads an empty value in a QueryDict as "not given".
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        status_filter = filters.validated_data.get("status")
        return Response(
            [
                {
                    **experiment_representation(experiment),
                    "enrolled_users": experiment.enrolled_users,
                    "manual_users": experiment.manual_users,
                }
                for experiment in experiment_list(status=status_filter)
            ]
        )

    @extend_schema(
        tags=TAGS, request=ExperimentInputSerializer, responses={201: ExperimentOutputSerializer}
    )
    def post(self, request):
        serializer = ExperimentInputSerializer(data=json_object_body(request))
        serializer.is_valid(raise_exception=True)
        experiment = experiment_create(
            data=serializer.validated_data, actor=request.user, source=SOURCE
        )
        return Response(experiment_representation(experiment), status=status.HTTP_201_CREATED)


class ExperimentDetailApi(AdminExperimentApi):
    def get_permissions(self):
        if self.request.method == "DELETE":
            self.change_permission = "recsys_experiments.delete_experiment"
        return super().get_permissions()

    @extend_schema(tags=TAGS, responses=ExperimentOutputSerializer)
    def get(self, request, key):
        return Response(experiment_representation(experiment_get(key)))

    def _update(self, request, key, *, partial):
        experiment = experiment_get(key)
        serializer = ExperimentInputSerializer(
            data=json_object_body(request),
            current=experiment_definition(experiment),
            partial=partial,
        )
        serializer.is_valid(raise_exception=True)
        experiment = experiment_update(
            experiment=experiment,
            data=serializer.validated_data,
            partial=partial,
            actor=request.user,
            source=SOURCE,
        )
        return Response(experiment_representation(experiment))

    @extend_schema(
        tags=TAGS, request=ExperimentInputSerializer, responses=ExperimentOutputSerializer
    )
    def put(self, request, key):
        return self._update(request, key, partial=False)

    @extend_schema(
        tags=TAGS, request=ExperimentInputSerializer, responses=ExperimentOutputSerializer
    )
    def patch(self, request, key):
        return self._update(request, key, partial=True)

    @extend_schema(
        tags=TAGS,
        request=None,
        responses={204: None},
        description="Delete a draft (audited). Active and ended experiments answer 409 with "
        "the reason. The key of a deleted draft that users were assigned to is retired: "
        "creating an experiment with it again answers 400 naming `key`.",
    )
    def delete(self, request, key):
        experiment_delete(experiment=experiment_get(key), actor=request.user, source=SOURCE)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExperimentActivateApi(AdminExperimentApi):
    @extend_schema(tags=TAGS, request=None, responses={200: ExperimentOutputSerializer})
    def post(self, request, key):
        experiment = experiment_activate(
            experiment=experiment_get(key), actor=request.user, source=SOURCE
        )
        return Response(experiment_representation(experiment))


class ExperimentEndApi(AdminExperimentApi):
    @extend_schema(tags=TAGS, request=None, responses={200: ExperimentOutputSerializer})
    def post(self, request, key):
        experiment = experiment_end(
            experiment=experiment_get(key), actor=request.user, source=SOURCE
        )
        return Response(experiment_representation(experiment))


class ExperimentDuplicateApi(AdminExperimentApi):
    change_permission = "recsys_experiments.add_experiment"

    class DuplicateInputSerializer(serializers.Serializer):
        key = StrictCharField(required=False, help_text="default: <key>_copy")

    @extend_schema(
        tags=TAGS, request=DuplicateInputSerializer, responses={201: ExperimentOutputSerializer}
    )
    def post(self, request, key):
        serializer = self.DuplicateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        copy = experiment_duplicate(
            experiment=experiment_get(key),
            new_key=serializer.validated_data.get("key"),
            actor=request.user,
            source=SOURCE,
        )
        return Response(experiment_representation(copy), status=status.HTTP_201_CREATED)


class ExperimentRotateSaltApi(AdminExperimentApi):
    class RotateSaltInputSerializer(serializers.Serializer):
        confirm = StrictBooleanField(
            help_text="must be true: every automatic assignment is re-randomised"
        )

    @extend_schema(
        tags=TAGS,
        request=RotateSaltInputSerializer,
        responses=inline_serializer(
            "RotateSaltResult",
            {
                "experiment": ExperimentOutputSerializer(),
                "auto_assignments_deleted": serializers.IntegerField(),
            },
        ),
    )
    def post(self, request, key):
        serializer = self.RotateSaltInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        experiment, deleted = experiment_rotate_salt(
            experiment=experiment_get(key),
            confirm=serializer.validated_data["confirm"],
            actor=request.user,
            source=SOURCE,
        )
        return Response(
            {
                "experiment": experiment_representation(experiment),
                "auto_assignments_deleted": deleted,
            }
        )
