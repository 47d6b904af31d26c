"""The API's shapes. An experiment body is validated by the domain rules of
`lib/experiment_rules.py` (one source of truth for the API, the admin and the commands): the
declared fields document the schema, and the rules' field paths (`variants[1].weight`) are the
serializer's errors."""

from rest_framework import serializers

from recsys_experiments.lib.constants import (
    ASSIGNMENT_MODES,
    EXPERIMENT_STATUSES,
    KEY_PATTERN,
    PLATFORMS,
    UNASSIGNED,
)
from recsys_experiments.lib.errors import InvalidInput
from recsys_experiments.lib.experiment_rules import clean_definition, clean_edit


class VariantSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="1-64 letters, digits, '_' or '-'; unique")
    weight = serializers.FloatField(
        help_text="> 0; any positive numbers (70 and 30, or 1, 1 and 2): stored normalised to "
        "sum 1, and the stored weights are returned"
    )
    config = serializers.DictField(required=False, help_text="ranking knob overrides")


class NamespaceSerializer(serializers.Serializer):
    name = serializers.CharField()
    start = serializers.FloatField()
    end = serializers.FloatField()


class TargetingSerializer(serializers.Serializer):
    platform = serializers.ChoiceField(choices=PLATFORMS, required=False)
    min_app_version = serializers.CharField(required=False)
    max_app_version = serializers.CharField(required=False)


class ExperimentInputSerializer(serializers.Serializer):
    key = serializers.CharField(help_text=f"{KEY_PATTERN}; fixed once activated")
    description = serializers.CharField(required=False, allow_blank=True)
    variants = VariantSerializer(many=True)
    salt = serializers.CharField(required=False, help_text="ASCII; generated when omitted")
    traffic = serializers.FloatField(required=False, default=1.0)
    namespace = NamespaceSerializer(required=False, allow_null=True)
    targeting = TargetingSerializer(required=False)
    guardrails = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text='e.g. [{"metric": "like_rate", "max_drop": 0.02}]; see docs',
    )
    sequential_testing = serializers.BooleanField(
        required=False,
        default=True,
        help_text="results use always-valid (sequential) CIs and p-values; false: fixed-horizon",
    )
    started_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="scheduled start of a draft (ISO 8601 with a timezone, not in the past); "
        "fixed once active; omitted: unchanged, null: no schedule",
    )
    ended_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="scheduled end of a draft or active experiment (after started_at, not in "
        "the past); omitted: unchanged, null: no scheduled end",
    )

    def __init__(self, *args, current: dict | None = None, **kwargs):
        """`current`: the definition an edit applies to (PUT, and PATCH with partial=True)."""
        super().__init__(*args, **kwargs)
        self.current = current

    def to_internal_value(self, data):
        try:
            if self.current is None:
                return clean_definition(data)
            return clean_edit(data, current=self.current, partial=self.partial)
        except InvalidInput as error:
            # Flat {field path: [reasons]}: the error body names the same paths as the rules.
            raise serializers.ValidationError(error.errors) from error


class ExperimentOutputSerializer(ExperimentInputSerializer):
    status = serializers.ChoiceField(choices=EXPERIMENT_STATUSES)
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ExperimentListItemSerializer(ExperimentOutputSerializer):
    enrolled_users = serializers.IntegerField()
    manual_users = serializers.IntegerField()


class AssignmentSerializer(serializers.Serializer):
    experiment_key = serializers.CharField()
    variant = serializers.CharField()
    assignment_mode = serializers.ChoiceField(choices=ASSIGNMENT_MODES)
    assigned_by = serializers.CharField(allow_null=True)
    assigned_at = serializers.DateTimeField()


class ActiveExperimentStateSerializer(serializers.Serializer):
    experiment_key = serializers.CharField()
    variant = serializers.CharField(allow_null=True)
    assignment_mode = serializers.ChoiceField(choices=[*ASSIGNMENT_MODES, UNASSIGNED])
    hashed_variant = serializers.CharField(allow_null=True)
    targeted = serializers.BooleanField()


class UserSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    username = serializers.CharField()
    email = serializers.CharField()


class UserAssignmentsSerializer(serializers.Serializer):
    user = UserSummarySerializer()
    assignments = AssignmentSerializer(many=True)
    active_experiments = ActiveExperimentStateSerializer(many=True)
