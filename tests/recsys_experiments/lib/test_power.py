"""Power and duration (recsys_experiments/lib/power.py) against statsmodels' power functions,
the MDE as the inverse of the sample size, and the calculator's input checks."""

import math

import pytest
from statsmodels.stats.power import NormalIndPower, zt_ind_solve_power
from statsmodels.stats.proportion import proportion_effectsize

from recsys_experiments.lib.errors import InvalidInput
from recsys_experiments.lib.power import (
    calculator,
    duration,
    mde_multiplier,
    power_at,
    proportion_mde,
    proportion_users_per_variant,
    users_per_variant,
)


def test_the_multiplier_solves_two_tailed_power_as_statsmodels():
    m = mde_multiplier()
    assert power_at(m) == pytest.approx(0.8, abs=1e-12)
    assert m == pytest.approx(2.8016, abs=1e-4)  # ~ 1.960 + 0.842
    # statsmodels' power at the same standardised effect (n = 2 per arm, d = m: d * sqrt(1))
    assert NormalIndPower().power(effect_size=m, nobs1=2, alpha=0.05, ratio=1) == pytest.approx(
        0.8, abs=1e-10
    )


@pytest.mark.parametrize(("delta", "sigma"), [(0.1, 1.0), (0.02, 0.5), (3.0, 12.0)])
def test_users_per_variant_equals_statsmodels_with_the_matching_effect_size(delta, sigma):
    ours = users_per_variant(delta, sigma**2, sigma**2)
    theirs = NormalIndPower().solve_power(
        effect_size=delta / sigma, nobs1=None, alpha=0.05, power=0.8, ratio=1
    )
    assert ours == pytest.approx(theirs, rel=1e-6)
    assert ours == pytest.approx(
        zt_ind_solve_power(effect_size=delta / sigma, alpha=0.05, power=0.8, ratio=1), rel=1e-6
    )


@pytest.mark.parametrize(("baseline", "delta"), [(0.1, 0.01), (0.3, 0.03), (0.02, 0.004)])
def test_proportion_sample_size_equals_statsmodels(baseline, delta):
    ours = proportion_users_per_variant(baseline, delta)
    treated = baseline + delta
    # Our variance: p0(1-p0) + p1(1-p1) (unpooled); the matching standardised effect.
    effect = delta / math.sqrt((baseline * (1 - baseline) + treated * (1 - treated)) / 2)
    assert ours == pytest.approx(
        NormalIndPower().solve_power(effect_size=effect, alpha=0.05, power=0.8, ratio=1), rel=1e-6
    )
    # Cohen's h (arcsine, variance-stabilised) is a slightly different approximation: close.
    arcsine = NormalIndPower().solve_power(
        effect_size=proportion_effectsize(treated, baseline), alpha=0.05, power=0.8, ratio=1
    )
    assert ours == pytest.approx(arcsine, rel=0.02)


@pytest.mark.parametrize(("baseline", "users"), [(0.1, 5000), (0.45, 800), (0.01, 200_000)])
def test_the_mde_is_the_inverse_of_the_sample_size(baseline, users):
    delta = proportion_mde(baseline, users)
    assert proportion_users_per_variant(baseline, delta) == pytest.approx(users, rel=1e-9)
    assert proportion_mde(baseline, 10) == math.inf or proportion_mde(baseline, 10) > delta


def test_duration_from_a_standard_error_and_known_arrivals():
    # 4,000 users in 8 days (500 a day); the comparison's standard error 0.004 on a 0.2 rate.
    result = duration(
        variant="treatment",
        std_error=0.004,
        control_value=0.2,
        users=4000,
        elapsed_days=8,
        target_mde_rel=0.05,
    )
    m = mde_multiplier()
    assert result.mde_abs == pytest.approx(m * 0.004, rel=1e-12)
    assert result.mde_rel == pytest.approx(m * 0.004 / 0.2, rel=1e-12)
    assert result.target_mde_abs == pytest.approx(0.01)
    # se^2 falls as 1/users: the MDE of 0.01 needs 4000 * (m * 0.004 / 0.01)^2 users.
    needed = 4000 * (m * 0.004 / 0.01) ** 2
    assert result.users_needed == math.ceil(needed)
    assert result.days_needed == pytest.approx(needed / 500, rel=1e-12)
    assert result.days_remaining == pytest.approx(needed / 500 - 8, rel=1e-12)
    # Consistency: at users_needed the MDE is (just) the target.
    se_then = 0.004 * math.sqrt(4000 / needed)
    assert m * se_then == pytest.approx(0.01, rel=1e-12)
    # Already past the target: nothing to go.
    done = duration(
        variant="t", std_error=0.001, control_value=0.2, users=4000, elapsed_days=8,
        target_mde_rel=0.05,
    )  # fmt: skip
    assert done.days_remaining == 0 and done.days_needed < 8


def test_duration_without_an_answer_says_why():
    assert duration(variant="t", std_error=None, control_value=0.2, users=10, elapsed_days=1,
                    target_mde_rel=0.05).reason == "no standard error yet"  # fmt: skip
    zero = duration(variant="t", std_error=0.01, control_value=0.0, users=10, elapsed_days=1,
                    target_mde_rel=0.05)  # fmt: skip
    assert zero.mde_abs is not None and zero.mde_rel is None and "zero" in zero.reason


def test_the_calculator_gives_users_per_variant_and_days():
    result = calculator(
        {"baseline": "0.1", "mde": "0.05", "mde_type": "relative", "variants": "3",
         "daily_users": "2000"}
    )  # fmt: skip
    expected = math.ceil(proportion_users_per_variant(0.1, 0.005))
    assert result["users_per_variant"] == expected
    assert result["total_users"] == 3 * expected
    assert result["days"] == math.ceil(3 * expected / 2000)
    assert result["treatment_rate"] == pytest.approx(0.105)
    absolute = calculator(
        {"baseline": 0.1, "mde": 0.005, "mde_type": "absolute", "variants": 3, "daily_users": 2000}
    )
    assert absolute["users_per_variant"] == expected


HOSTILE = [
    ({"baseline": "0.1\x00"}, "baseline"),
    ({"baseline": "nan"}, "baseline"),
    ({"baseline": "inf"}, "baseline"),
    ({"baseline": "1"}, "baseline"),
    ({"baseline": "0"}, "baseline"),
    ({"baseline": ["0.1"]}, "baseline"),
    ({"baseline": True}, "baseline"),
    ({"baseline": "9" * 5000}, "baseline"),
    ({"mde": "-0.05"}, "mde"),
    ({"mde": "1e999"}, "mde"),
    ({"mde": "20"}, "mde"),  # 0.1 * 21 is above 1
    ({"mde_type": "percent"}, "mde_type"),
    ({"mde_type": {"x": 1}}, "mde_type"),
    ({"variants": "1"}, "variants"),
    ({"variants": "21"}, "variants"),
    ({"variants": "2.5"}, "variants"),
    ({"variants": "²"}, "variants"),
    ({"daily_users": "0"}, "daily_users"),
    ({"daily_users": "10000000000"}, "daily_users"),
    ({"daily_users": "-3"}, "daily_users"),
]


@pytest.mark.parametrize(("change", "field"), HOSTILE)
def test_the_calculator_names_each_bad_field(change, field):
    good = {"baseline": "0.1", "mde": "0.05", "mde_type": "relative", "variants": "2",
            "daily_users": "1000"}  # fmt: skip
    with pytest.raises(InvalidInput) as error:
        calculator({**good, **change})
    assert set(error.value.errors) == {field}


def test_the_calculator_reports_every_bad_field_at_once():
    with pytest.raises(InvalidInput) as error:
        calculator({})
    assert set(error.value.errors) == {"baseline", "mde", "variants", "daily_users"}
    with pytest.raises(InvalidInput):
        calculator(["not", "an", "object"])
