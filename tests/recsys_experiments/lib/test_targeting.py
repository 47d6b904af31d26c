import pytest

from recsys_experiments.lib.targeting import APP_VERSION_PATTERN, app_version_key, is_targeted


@pytest.mark.parametrize(
    ("newer", "older"),
    [("1.10.0", "1.9.2"), ("2", "1.99.99"), ("1.0.1", "1"), ("10.0", "9.9.9.9")],
)
def test_app_versions_compare_numerically(newer, older):
    assert app_version_key(newer) > app_version_key(older)


def test_trailing_zero_parts_do_not_matter():
    assert app_version_key("1.10") == app_version_key("1.10.0") == app_version_key("1.10.0.0")


def rules(**overrides):
    base = {
        "platform": None,
        "min_app_version": None,
        "max_app_version": None,
        "request_platform": None,
        "request_app_version": None,
    }
    return {**base, **overrides}


def test_no_rules_match_everyone():
    assert is_targeted(**rules())


def test_platform_rule_needs_that_platform():
    assert is_targeted(**rules(platform="ios", request_platform="ios"))
    assert not is_targeted(**rules(platform="ios", request_platform="android"))
    assert not is_targeted(**rules(platform="ios"))


def test_version_bounds_are_inclusive_and_need_a_version():
    window = {"min_app_version": "1.9.2", "max_app_version": "2.0"}
    assert is_targeted(**rules(**window, request_app_version="1.9.2"))
    assert is_targeted(**rules(**window, request_app_version="1.10"))
    assert is_targeted(**rules(**window, request_app_version="2.0.0"))
    assert not is_targeted(**rules(**window, request_app_version="2.0.1"))
    assert not is_targeted(**rules(**window, request_app_version="1.9.1"))
    assert not is_targeted(**rules(**window))
    assert not is_targeted(**rules(**window, request_app_version="one"))


@pytest.mark.parametrize(
    ("version", "valid"),
    [
        ("1", True),
        ("2.10.3", True),
        ("1.2.3.4", True),
        ("999999999.0", True),
        ("1.2.3.4.5", False),
        ("1234567890", False),
        ("1.2\n", False),  # `$` would accept the trailing newline
        ("\n1.2", False),
        ("\u0661.\u0662", False),  # Arabic-Indic digits: \d would accept them
        ("1.\u0662", False),
        ("1.x", False),
        ("", False),
    ],
)
def test_app_version_pattern_takes_ascii_dotted_digits_only(version, valid):
    assert bool(APP_VERSION_PATTERN.fullmatch(version)) is valid
    # DRF's RegexField searches rather than matches: the pattern must anchor itself.
    assert bool(APP_VERSION_PATTERN.search(version)) is valid


def test_a_request_with_non_ascii_digits_matches_no_version_rule():
    assert not is_targeted(**rules(min_app_version="1.0", request_app_version="\u0661.\u0662"))
