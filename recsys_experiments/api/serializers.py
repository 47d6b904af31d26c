"""Shapes for the OpenAPI schema. Experiment bodies are validated by the domain rules in
`lib/experiment_rules.py` (one source of truth for the API, the admin and the commands)."""

from rest_framework import serializers

from recsys_experiments.lib.constants import (
    ASSIGNMENT_MODES,
    EXPERIMENT_STATUSES,
    KEY_PATTERN,
    PLATFORMS,
    UNASSIGNED,
)


class VariantSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="1-64 letters, digits, '_' or '-'; unique")
    weight = serializers.FloatField(help_text="> 0; all weights sum to 1 ± 0.01 (normalised)")
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
