"""The outcome types of lib/constants.py are the database's: the CHECK on rec_outcomes, the
per-type counts of the daily views and the deck's "already acted upon" filter."""

import re

from django.db import connection

from recsys_experiments.lib.constants import ACTED_UPON_OUTCOME_TYPES, OUTCOME_TYPES
from telemetry.models import ACTED_UPON_TYPES, OutcomeType
from tests.recsys_experiments.test_constants import constraint_definition, listed_values


def fetch_one(sql: str, params=()) -> str:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def test_the_check_constraint_lists_the_outcome_types(db):
    definition = constraint_definition("rec_outcomes", "rec_outcomes_type_check")
    assert listed_values(definition) == OUTCOME_TYPES
    assert tuple(OutcomeType.values) == OUTCOME_TYPES


def test_the_daily_views_count_each_outcome_type(db):
    definition = fetch_one("select pg_get_viewdef('rec_impression_outcomes_v1'::regclass)")
    counted = set(re.findall(r"outcome_type = '([^']*)'::text", definition))
    assert counted == set(OUTCOME_TYPES)


def test_the_deck_skips_the_acted_upon_types(db):
    definition = fetch_one(
        "select pg_get_functiondef(p.oid) from pg_proc as p where p.proname = %s",
        ["media_swipe_deck_v1"],
    )
    listed = re.search(r"outcome_type in \(([^)]*)\)", definition).group(1)
    assert tuple(re.findall(r"'([^']*)'", listed)) == ACTED_UPON_OUTCOME_TYPES
    assert tuple(ACTED_UPON_TYPES) == ACTED_UPON_OUTCOME_TYPES
