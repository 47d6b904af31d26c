import json

import pytest
from django.db import connection

from recsys_experiments.lib.errors import InvalidInput
from recsys_experiments.lib.knobs import DEFAULT_KNOBS
from recsys_experiments.models import Experiment
from recsys_experiments.services.experiments import experiment_create


def test_sql_and_python_agree_on_default_knobs(db):
    with connection.cursor() as cursor:
        cursor.execute("select rec_default_ranking_knobs()")
        in_sql = json.loads(cursor.fetchone()[0])

    assert in_sql == DEFAULT_KNOBS


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"cf_wieght": 0.5}, "variants[1].config.cf_wieght"),
        ({"diversity_cap": 2.5}, "variants[1].config.diversity_cap"),
        ({"cf_weight": "high"}, "variants[1].config.cf_weight"),
        ({"popularity_weight": -1}, "variants[1].config.popularity_weight"),
    ],
)
def test_unknown_knobs_or_bad_values_are_rejected(db, config, field):
    data = {
        "key": "knob_test",
        "variants": [
            {"name": "control", "weight": 0.5},
            {"name": "treatment", "weight": 0.5, "config": config},
        ],
    }
    with pytest.raises(InvalidInput) as raised:
        experiment_create(data=data, actor=None, source="test")

    assert field in raised.value.errors
    assert not Experiment.objects.exists()
