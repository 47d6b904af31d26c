import pytest

from recsys_experiments.errors import InvalidInput
from recsys_experiments.lib.experiment_rules import clean_definition


def definition(**overrides):
    base = {
        "key": "swipe_blend_test",
        "variants": [
            {"name": "control", "weight": 0.5, "config": {}},
            {"name": "treatment", "weight": 0.5, "config": {}},
        ],
    }
    return {**base, **overrides}


def errors_of(data) -> dict:
    with pytest.raises(InvalidInput) as raised:
        clean_definition(data)
    return raised.value.errors


def test_defaults_fill_salt_traffic_targeting_and_config():
    cleaned = clean_definition(
        definition(variants=[{"name": "a", "weight": 0.4}, {"name": "b", "weight": 0.6}])
    )

    assert cleaned["salt"] and cleaned["salt"].isascii()
    assert cleaned["traffic"] == 1.0
    assert cleaned["namespace"] is None
    assert cleaned["targeting"] == {}
    assert [v["config"] for v in cleaned["variants"]] == [{}, {}]


def test_weights_close_to_one_are_stored_normalised():
    cleaned = clean_definition(
        definition(
            variants=[
                {"name": "a", "weight": 0.333},
                {"name": "b", "weight": 0.333},
                {"name": "c", "weight": 0.333},
            ]
        )
    )

    weights = [v["weight"] for v in cleaned["variants"]]
    assert abs(sum(weights) - 1) < 1e-12
    assert weights[0] == pytest.approx(1 / 3)


def test_every_bad_field_is_reported_at_once():
    errors = errors_of(
        {
            "key": "Bad Key!",
            "variants": [
                {"name": "a", "weight": 0},
                {"name": "a", "weight": 0.5, "config": []},
                {"name": "bad name", "weight": "x", "colour": "red"},
            ],
            "traffic": 1.5,
            "salt": "naïve salt",
            "namespace": {"name": "ns", "start": 0.6, "end": 0.4},
            "targeting": {"platform": "symbian", "min_app_version": "1.x", "os": "x"},
            "status": "active",
        }
    )

    assert set(errors) >= {
        "key",
        "variants[0].weight",
        "variants[1].name",
        "variants[1].config",
        "variants[2].name",
        "variants[2].weight",
        "variants[2].colour",
        "traffic",
        "salt",
        "namespace",
        "targeting.platform",
        "targeting.min_app_version",
        "targeting.os",
        "status",
    }


@pytest.mark.parametrize(
    ("variants", "field"),
    [
        ([{"name": "only", "weight": 1}], "variants"),
        ([{"name": "a", "weight": 0.4}, {"name": "b", "weight": 0.4}], "variants"),
        ([{"name": "a", "weight": 0.6}, {"name": "b", "weight": 0.6}], "variants"),
        ([{"name": "a", "weight": -0.5}, {"name": "b", "weight": 1.5}], "variants[0].weight"),
        ("control,treatment", "variants"),
    ],
)
def test_variant_rules(variants, field):
    assert field in errors_of(definition(variants=variants))


def test_version_bounds_must_be_ordered():
    errors = errors_of(definition(targeting={"min_app_version": "2.0", "max_app_version": "1.10"}))
    assert "targeting" in errors
