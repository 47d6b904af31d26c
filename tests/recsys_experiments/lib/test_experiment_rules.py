import pytest

from recsys_experiments.lib.errors import InvalidInput
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


@pytest.mark.parametrize(
    ("weights", "stored"),
    [
        ([70, 30], [0.7, 0.3]),
        ([1, 1, 2], [0.25, 0.25, 0.5]),
        ([50.0, 50.0], [0.5, 0.5]),
        ([0.2, 0.8], [0.2, 0.8]),
        ([3, 1], [0.75, 0.25]),
    ],
)
def test_any_positive_weights_are_stored_normalised_to_sum_one(weights, stored):
    variants = [{"name": f"v{i}", "weight": w} for i, w in enumerate(weights)]

    cleaned = clean_definition(definition(variants=variants))

    assert [v["weight"] for v in cleaned["variants"]] == stored


def test_a_vector_already_summing_to_one_within_1e_9_is_kept_as_is():
    weights = [0.1, 0.2, 0.7]  # sums to 0.9999999999999999 in floating point
    variants = [{"name": f"v{i}", "weight": w} for i, w in enumerate(weights)]

    cleaned = clean_definition(definition(variants=variants))

    assert [v["weight"] for v in cleaned["variants"]] == weights


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
        ([{"name": "a", "weight": "0.5"}, {"name": "b", "weight": 0.5}], "variants[0].weight"),
        ([{"name": "a", "weight": float("nan")}, {"name": "b", "weight": 1}], "variants[0].weight"),
        ([{"name": "a", "weight": float("inf")}, {"name": "b", "weight": 1}], "variants[0].weight"),
        ([{"name": "a", "weight": True}, {"name": "b", "weight": 1}], "variants[0].weight"),
        ([{"name": "a", "weight": 1e308}, {"name": "b", "weight": 1e308}], "variants"),
        ([{"name": "a", "weight": 1e-300}, {"name": "b", "weight": 1e300}], "variants[0].weight"),
        ([{"name": "a", "weight": -0.5}, {"name": "b", "weight": 1.5}], "variants[0].weight"),
        ("control,treatment", "variants"),
    ],
)
def test_variant_rules(variants, field):
    assert field in errors_of(definition(variants=variants))


def test_version_bounds_must_be_ordered():
    errors = errors_of(definition(targeting={"min_app_version": "2.0", "max_app_version": "1.10"}))
    assert "targeting" in errors


# --- bounds and text the database cannot store --------------------------------------------------


def variants_with(index=0, **fields):
    variants = [
        {"name": "control", "weight": 0.5, "config": {}},
        {"name": "treatment", "weight": 0.5, "config": {}},
    ]
    variants[index] = {**variants[index], **fields}
    return variants


def deep(levels):
    value = {}
    for _ in range(levels - 1):
        value = {"x": value}
    return value


BAD_DEFINITIONS = [
    # the key, salt, names and versions: a trailing newline passes `$`, not `\Z`
    ({"key": "abc\n"}, "key"),
    ({"key": "abc\x00"}, "key"),
    ({"key": "abc\ud800"}, "key"),
    ({"key": "k" * 64}, "key"),
    ({"salt": "salt\n"}, "salt"),
    ({"salt": "s\x00lt"}, "salt"),
    ({"variants": variants_with(name="control\n")}, "variants[0].name"),
    ({"variants": variants_with(1, name="tr\ud800")}, "variants[1].name"),
    ({"namespace": {"name": "ns\n", "start": 0, "end": 0.5}}, "namespace.name"),
    ({"namespace": {"name": "n\x00s", "start": 0, "end": 0.5}}, "namespace.name"),
    ({"targeting": {"min_app_version": "1.2\n"}}, "targeting.min_app_version"),
    ({"targeting": {"max_app_version": "\u0661.\u0662"}}, "targeting.max_app_version"),
    ({"targeting": {"platform": "ios\x00"}}, "targeting.platform"),
    # the description
    ({"description": "x" * 2001}, "description"),
    ({"description": "x" * 1_000_000}, "description"),
    ({"description": "a\x00b"}, "description"),
    ({"description": "\ud800"}, "description"),
    # configs: every string, keys included, recursively
    ({"variants": variants_with(config={"foo": "\x00"})}, "variants[0].config.foo"),
    ({"variants": variants_with(1, config={"foo": ["ok", "\ud800"]})}, "variants[1].config.foo[1]"),
    ({"variants": variants_with(config={"a\x00": 1})}, "variants[0].config"),
    ({"variants": variants_with(config=deep(100))}, "variants[0].config" + ".x" * 30),
    ({"variants": variants_with(config={f"k{i}": i for i in range(20_000)})}, "variants"),
    ({"variants": variants_with(colour="\x00")}, "variants[0].colour"),
    # counts
    (
        {"variants": [{"name": f"v{i}", "weight": 1 / 21, "config": {}} for i in range(21)]},
        "variants",
    ),
    ({"guardrails": [{"metric": "like_rate", "max_drop": 0.1}] * 21}, "guardrails"),
    ({"guardrails": [{"metric": "like\x00rate", "max_drop": 0.1}]}, "guardrails[0].metric"),
    ({"guardrails": [{"metric": ["like_rate"], "max_drop": 0.1}]}, "guardrails[0].metric"),
    # numbers no float can hold
    ({"traffic": 10**400}, "traffic"),
    ({"variants": variants_with(weight=10**400)}, "variants[0].weight"),
    # unknown fields are named, escaped, in a bounded answer
    ({"a\x00b": 1}, "a\\x00b"),
    ({f"unknown_{i}": 1 for i in range(500)}, "body"),
]


@pytest.mark.parametrize(("overrides", "field"), BAD_DEFINITIONS)
def test_bad_input_is_refused_naming_its_path(overrides, field):
    errors = errors_of(definition(**overrides))

    assert field in errors
    assert len(errors) <= 51
    assert all(len(reason) < 300 for reasons in errors.values() for reason in reasons)


def test_a_refused_long_description_says_the_limit_and_its_length():
    [reason] = errors_of(definition(description="x" * 1_000_000))["description"]

    assert "at most 2000 characters" in reason and "1000000" in reason


def test_unstorable_text_is_named_for_what_it_is():
    errors = errors_of(
        definition(
            description="\x00",
            variants=variants_with(config={"foo": "\ud800"}),
        )
    )

    assert errors["description"] == ["contains a NUL character (\\u0000), which cannot be stored"]
    assert errors["variants[0].config.foo"] == [
        "contains a lone surrogate (such as \\ud800), which is not valid Unicode"
    ]


def test_the_bounds_themselves_are_accepted():
    cleaned = clean_definition(
        definition(
            key="k" * 63,
            description="é" * 2000,
            salt="s" * 64,
            variants=[{"name": f"v{i}", "weight": 0.05, "config": {}} for i in range(20)],
            guardrails=[{"metric": "like_rate", "max_drop": 0.1}] * 20,
            targeting={"min_app_version": "1.2.3.4", "max_app_version": "999999999"},
        )
    )

    assert len(cleaned["description"]) == 2000 and len(cleaned["variants"]) == 20
