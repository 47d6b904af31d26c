from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from recsys_experiments.api.base import EndUserApi
from recsys_experiments.lib.constants import ASSIGNMENT_MODES
from recsys_experiments.selectors import user_active_assignments


class MyExperimentsApi(EndUserApi):
    """The caller's variants stored in the experiments running now (a read: empty until the
    first deck, POST /api/v1/assignments or exposure assigns the caller)."""

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
