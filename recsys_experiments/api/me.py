from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from recsys_experiments.api.base import EndUserApi
from recsys_experiments.lib.constants import ASSIGNMENT_MODES
from recsys_experiments.selectors import user_active_assignments


class MyExperimentsApi(EndUserApi):
    """The caller's own variants in the experiments running now."""

    @extend_schema(
        tags=["deck"],
        responses=inline_serializer(
            "MyExperiments",
            {
                "experiments": inline_serializer(
                    "MyAssignment",
                    {
                        "experiment_key": serializers.CharField(),
                        "variant": serializers.CharField(),
                        "assignment_mode": serializers.ChoiceField(choices=ASSIGNMENT_MODES),
                        "assigned_at": serializers.DateTimeField(),
                    },
                    many=True,
                )
            },
        ),
    )
    def get(self, request):
        return Response({"experiments": user_active_assignments(request.user)})
