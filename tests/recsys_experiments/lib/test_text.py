"""lib/text.py: what PostgreSQL cannot store, and untrusted text shown on one line."""

import pytest

from recsys_experiments.lib.text import (
    MAX_JSON_DEPTH,
    MAX_JSON_NODES,
    NUL_REASON,
    SURROGATE_REASON,
    json_problems,
    shown,
    unstorable_text_reason,
)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("plain", None),
        ("", None),
        ("naïve 日本 😀 \n\t", None),  # any valid Unicode, control characters but NUL included
        ("a\x00b", NUL_REASON),
        ("\x00", NUL_REASON),
        ("a\ud800", SURROGATE_REASON),
        ("\udfff", SURROGATE_REASON),
        ("\ud83d\ude00", SURROGATE_REASON),  # a surrogate pair as two code points is no emoji
    ],
)
def test_unstorable_text_reason(value, reason):
    assert unstorable_text_reason(value) == reason


def test_shown_escapes_control_characters_and_surrogates_and_cuts_long_text():
    assert shown("a\x00b\nc\ud800") == "a\\x00b\\nc\\ud800"
    assert shown("x" * 1000) == "x" * 64 + "…"
    assert shown("日本") == "日本"
    assert shown(None) == "None"


def nested(levels):
    """A list in a list in a list ...: `levels` lists in all."""
    value = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"config": {"cf_weight": 0.5}, "name": "a"}, []),
        ({"config": {"foo": "\x00"}}, [("variants.config.foo", NUL_REASON)]),
        (["ok", ["\ud800"]], [("variants[1][0]", SURROGATE_REASON)]),
        ({"a\x00": 1}, [("variants", f"has a key that {NUL_REASON}")]),
        (
            [{"name": "\x00"}, {"name": "b", "config": {"x": "\ud800"}}],
            [("variants[0].name", NUL_REASON), ("variants[1].config.x", SURROGATE_REASON)],
        ),
    ],
)
def test_json_problems_name_the_path_of_every_bad_string(value, expected):
    assert list(json_problems(value, "variants")) == expected


def test_json_deeper_than_the_limit_is_refused_without_recursion():
    assert list(json_problems(nested(MAX_JSON_DEPTH), "v")) == []
    assert len(list(json_problems(nested(MAX_JSON_DEPTH + 1), "v"))) == 1

    [(path, reason)] = json_problems(nested(100_000), "v")

    assert path == "v" + "[0]" * MAX_JSON_DEPTH
    assert "nested too deeply" in reason


def test_json_with_too_many_values_is_refused_as_a_whole():
    assert list(json_problems(list(range(MAX_JSON_NODES - 1)), "v")) == []
    assert list(json_problems(list(range(MAX_JSON_NODES)), "v")) == [
        ("v", f"is too large: at most {MAX_JSON_NODES} values")
    ]
