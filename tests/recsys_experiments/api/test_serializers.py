"""The experiment input serializer validates with the domain rules: same cleaned value, and
the rules' field paths as its errors (the API's error body flattens them unchanged)."""

import pytest

from recsys_experiments.api.errors import field_errors
from recsys_experiments.api.serializers import ExperimentInputSerializer
from recsys_experiments.lib.errors import InvalidInput
from recsys_experiments.lib.experiment_rules import clean_definition

BAD = {
    "key": "ok_key",
    "variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": -1}],
    "targeting": {"platform": "symbian"},
    "status": "active",
}


def test_errors_are_the_rules_field_paths():
    serializer = ExperimentInputSerializer(data=BAD)
    assert not serializer.is_valid()
    with pytest.raises(InvalidInput) as rules:
        clean_definition(BAD)
    assert field_errors(serializer.errors) == rules.value.errors
    assert {"variants[1].weight", "targeting.platform", "status"} <= set(rules.value.errors)


def test_an_edit_is_cleaned_against_the_current_definition():
    current = clean_definition(
        {"key": "k1", "variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}]}
    )
    patch = ExperimentInputSerializer(data={"traffic": 0.5}, current=current, partial=True)
    assert patch.is_valid()
    assert patch.validated_data == {**current, "traffic": 0.5}
    status = ExperimentInputSerializer(data={"status": "ended"}, current=current, partial=True)
    assert not status.is_valid()
    assert field_errors(status.errors) == {"status": ["changes only through activate and end"]}
