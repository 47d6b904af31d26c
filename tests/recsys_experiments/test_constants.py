"""The shared lists of lib/constants.py are the ones the database enforces: each CHECK
constraint, read back from pg_constraint, lists the same values (or the same pattern)."""

import re

import pytest
from django.db import connection

from recsys_experiments.lib.constants import (
    ASSIGNMENT_MODES,
    EXPERIMENT_STATUSES,
    KEY_PATTERN,
    PLATFORMS,
    SALT_PATTERN,
)
from recsys_experiments.models import AssignmentMode, ExperimentStatus, Platform


def constraint_definition(table: str, name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "select pg_get_constraintdef(c.oid) from pg_constraint as c "
            "where c.conrelid = %s::regclass and c.conname = %s",
            [table, name],
        )
        row = cursor.fetchone()
    assert row is not None, f"{table} has no constraint {name}"
    return row[0]


def listed_values(definition: str) -> tuple[str, ...]:
    """`CHECK ((status = ANY (ARRAY['draft'::text, ...])))` -> ('draft', ...)"""
    return tuple(re.findall(r"'([^']*)'::text", definition))


@pytest.mark.parametrize(
    ("table", "constraint", "values"),
    [
        ("rec_experiments", "rec_experiments_status_check", EXPERIMENT_STATUSES),
        ("rec_experiments", "rec_experiments_platform_check", PLATFORMS),
        ("rec_user_experiment_assignments", "rec_assignments_mode_check", ASSIGNMENT_MODES),
    ],
)
def test_each_value_list_is_the_databases(db, table, constraint, values):
    assert listed_values(constraint_definition(table, constraint)) == values


@pytest.mark.parametrize(
    ("constraint", "pattern"),
    [
        ("rec_experiments_key_slug_check", KEY_PATTERN),
        ("rec_experiments_salt_ascii_check", SALT_PATTERN),
    ],
)
def test_each_pattern_is_the_databases(db, constraint, pattern):
    assert listed_values(constraint_definition("rec_experiments", constraint)) == (pattern,)


@pytest.mark.parametrize(
    ("choices", "values"),
    [
        (ExperimentStatus, EXPERIMENT_STATUSES),
        (Platform, PLATFORMS),
        (AssignmentMode, ASSIGNMENT_MODES),
    ],
)
def test_the_model_choices_are_the_constants(choices, values):
    assert tuple(choices.values) == values
