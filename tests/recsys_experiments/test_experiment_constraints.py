"""The database keeps the experiment bounds whatever writes the table (migration 0005)."""

import pytest
from django.db import IntegrityError, transaction

from tests.factories.experiments import ExperimentFactory


def variants(count):
    return [{"name": f"v{i}", "weight": 1 / count, "config": {}} for i in range(count)]


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"description": "x" * 2001}, "rec_experiments_description_length_check"),
        ({"variants": variants(1)}, "rec_experiments_variants_count_check"),
        ({"variants": variants(21)}, "rec_experiments_variants_count_check"),
        (
            {"guardrails": [{"metric": "like_rate", "max_drop": 0.1}] * 21},
            "rec_experiments_guardrails_count_check",
        ),
        ({"guardrails": {}}, "rec_experiments_guardrails_count_check"),
        (
            {"namespace_name": "ns\n", "namespace_start": 0, "namespace_end": 1},
            "rec_experiments_namespace_name_check",
        ),
        ({"min_app_version": "1.2\n"}, "rec_experiments_min_app_version_check"),
        ({"max_app_version": "\u0661.\u0662"}, "rec_experiments_max_app_version_check"),
        ({"key": "abc\n"}, "rec_experiments_key_slug_check"),
    ],
)
def test_a_row_outside_the_bounds_is_refused(db, fields, constraint):
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        ExperimentFactory(**fields)


def test_a_row_at_the_bounds_is_stored(db):
    experiment = ExperimentFactory(
        description="é" * 2000,
        variants=variants(20),
        guardrails=[{"metric": "like_rate", "max_drop": 0.1}] * 20,
        namespace_name="n" * 63,
        namespace_start=0,
        namespace_end=1,
        min_app_version="1.2.3.4",
        max_app_version="999999999",
    )

    assert experiment.pk
