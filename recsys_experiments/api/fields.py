"""Serializer fields that take JSON types as the schema states them. DRF's own fields coerce
(`"5"` for an integer, `0` for a string, `1` for a boolean, an integer for a UUID), so a body
the OpenAPI schema forbids would be accepted; these refuse it with a 400 naming the field."""

from __future__ import annotations

from rest_framework import serializers


def strict(field_class: type[serializers.Field], *json_types: type, described_as: str):
    """`field_class` that first requires the incoming value to be one of `json_types`."""

    class StrictField(field_class):
        def to_internal_value(self, data):
            is_bool = isinstance(data, bool)
            if (is_bool and bool not in json_types) or not isinstance(data, json_types):
                raise serializers.ValidationError(f"must be {described_as}")
            return super().to_internal_value(data)

    StrictField.__name__ = StrictField.__qualname__ = f"Strict{field_class.__name__}"
    return StrictField


StrictCharField = strict(serializers.CharField, str, described_as="a string")
StrictRegexField = strict(serializers.RegexField, str, described_as="a string")
StrictChoiceField = strict(serializers.ChoiceField, str, described_as="a string")
StrictUUIDField = strict(serializers.UUIDField, str, described_as="a UUID string")
StrictIntegerField = strict(serializers.IntegerField, int, described_as="an integer")
StrictFloatField = strict(serializers.FloatField, int, float, described_as="a number")
StrictBooleanField = strict(serializers.BooleanField, bool, described_as="true or false")
