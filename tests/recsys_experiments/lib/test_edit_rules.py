"""Which edits an experiment's status allows (`check_edit_allowed`) and how an edit is
cleaned (`clean_edit`): the pure rules, tested once here; the services, the API, the commands
and the admin map their errors."""

import pytest

from recsys_experiments.lib.errors import IllegalTransition, InvalidInput
from recsys_experiments.lib.experiment_rules import (
    check_edit_allowed,
    clean_definition,
    clean_edit,
)

CURRENT = clean_definition(
    {
        "key": "ranking_v2",
        "salt": "s1",
        "variants": [
            {"name": "control", "weight": 0.5, "config": {}},
            {"name": "treatment", "weight": 0.5, "config": {}},
        ],
    }
)
RENAMED_VARIANTS = [
    {"name": "control", "weight": 0.5, "config": {}},
    {"name": "other", "weight": 0.5, "config": {}},
]
NEW_WEIGHTS = [
    {"name": "control", "weight": 0.25, "config": {}},
    {"name": "treatment", "weight": 0.75, "config": {}},
]


@pytest.mark.parametrize(
    ("status", "change", "refusal"),
    [
        ("draft", {"key": "renamed"}, None),
        ("draft", {"salt": "s2"}, None),
        ("draft", {"variants": RENAMED_VARIANTS}, None),
        ("active", {"description": "why"}, None),
        ("active", {"variants": NEW_WEIGHTS, "traffic": 0.5}, None),
        ("active", {"key": "renamed"}, 'the key of active experiment "ranking_v2" is fixed'),
        ("active", {"salt": "s2"}, "the salt of an active experiment changes only by rotate-salt"),
        ("active", {"variants": RENAMED_VARIANTS}, "variant names of an active experiment"),
        ("ended", {"description": "why"}, None),
        ("ended", {"traffic": 0.5}, 'experiment "ranking_v2" has ended: only its description'),
        ("ended", {"variants": NEW_WEIGHTS}, "(duplicate it to run again)"),
    ],
)
def test_the_status_decides_which_fields_may_change(status, change, refusal):
    definition = {**CURRENT, **change}
    if refusal is None:
        assert check_edit_allowed(status=status, current=CURRENT, definition=definition) == set(
            change
        )
    else:
        with pytest.raises(IllegalTransition) as raised:
            check_edit_allowed(status=status, current=CURRENT, definition=definition)
        assert refusal in raised.value.message


@pytest.mark.parametrize("status", ["draft", "active", "ended"])
def test_an_unchanged_definition_changes_nothing(status):
    assert check_edit_allowed(status=status, current=CURRENT, definition=dict(CURRENT)) == set()


def test_a_partial_edit_keeps_the_other_fields():
    assert clean_edit({"traffic": 0.5}, current=CURRENT, partial=True) == {
        **CURRENT,
        "traffic": 0.5,
    }


def test_a_full_edit_without_a_salt_keeps_the_current_salt():
    edited = clean_edit(
        {"key": "ranking_v2", "variants": NEW_WEIGHTS}, current=CURRENT, partial=False
    )
    assert edited["salt"] == "s1"
    assert edited["variants"] == NEW_WEIGHTS


@pytest.mark.parametrize("partial", [True, False])
def test_the_status_is_not_an_editable_field(partial):
    with pytest.raises(InvalidInput) as raised:
        clean_edit({"status": "active"}, current=CURRENT, partial=partial)
    assert raised.value.errors == {"status": ["changes only through activate and end"]}
