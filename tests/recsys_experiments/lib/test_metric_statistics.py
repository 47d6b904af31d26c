"""Metric lifts (ratio, mean per user, proportion) and multiple-testing corrections, checked
against scipy/statsmodels, a direct delta-method computation, a seeded bootstrap, and seeded
A/A and A/B simulations of users who differ in propensity (the calibration the issue asks for:
false positives ~0.05 and coverage ~0.95, with the naive per-impression z-test shown to fail)."""

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from recsys_experiments.lib.statistics import (
    EMPTY_ARM,
    ONE_USER,
    ZERO_CONTROL,
    ZERO_DENOMINATOR,
    ZERO_VARIANCE,
    adjust_p_values,
    mean_lift,
    proportion_lift,
    ratio_estimate,
    ratio_lift,
)

Z95 = 1.959963984540054


def engaged_users(rng, n, lift=1.0):
    """Per-user impressions (1 + Poisson(20)) and likes ~ Binomial(impressions, p * lift) with
    p ~ Beta(2, 8): users differ in how much they like (mean 0.2)."""
    impressions = 1 + rng.poisson(20, n)
    propensity = np.minimum(rng.beta(2, 8, n) * lift, 1.0)
    return rng.binomial(impressions, propensity), impressions


# --- ratio: the delta method -------------------------------------------------------------


def direct_delta(x, y):
    """The delta method written out term by term (no numpy covariance helper)."""
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxx = sum((a - mx) ** 2 for a in x) / (n - 1)
    syy = sum((b - my) ** 2 for b in y) / (n - 1)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / (n - 1)
    var = (sxx / my**2 - 2 * mx * sxy / my**3 + mx**2 * syy / my**4) / n
    return mx / my, var


def test_ratio_lift_equals_a_direct_delta_method_computation():
    rng = np.random.default_rng(13)
    x1, y1 = engaged_users(rng, 300, lift=1.05)
    x0, y0 = engaged_users(rng, 280)
    r1, v1 = direct_delta(x1.tolist(), y1.tolist())
    r0, v0 = direct_delta(x0.tolist(), y0.tolist())
    se = math.sqrt(v1 + v0)
    rel_se = math.sqrt(v1 / r0**2 + r1**2 * v0 / r0**4)

    lift = ratio_lift(numerator=x1, denominator=y1, control_numerator=x0, control_denominator=y0)

    assert lift.value == pytest.approx(x1.sum() / y1.sum(), abs=1e-15)
    assert lift.control_value == pytest.approx(x0.sum() / y0.sum(), abs=1e-15)
    assert lift.abs_lift == pytest.approx(r1 - r0, abs=1e-12)
    assert lift.p_value == pytest.approx(2 * stats.norm.sf(abs(r1 - r0) / se), abs=1e-12)
    assert (lift.abs_ci_low, lift.abs_ci_high) == pytest.approx(
        (r1 - r0 - Z95 * se, r1 - r0 + Z95 * se), abs=1e-12
    )
    assert lift.rel_lift == pytest.approx(r1 / r0 - 1, abs=1e-12)
    assert (lift.rel_ci_low, lift.rel_ci_high) == pytest.approx(
        (r1 / r0 - 1 - Z95 * rel_se, r1 / r0 - 1 + Z95 * rel_se), abs=1e-12
    )
    assert lift.reason is None


def test_ratio_lift_agrees_with_a_seeded_user_bootstrap():
    """Resampling users (the clusters) within each arm: the bootstrap standard errors of the
    difference and of the relative lift are within 10% of the delta method's, and the
    bootstrap two-sided p-value (normal approximation) agrees to 0.02."""
    rng = np.random.default_rng(7)
    x1, y1 = engaged_users(rng, 400, lift=1.08)
    x0, y0 = engaged_users(rng, 400)
    lift = ratio_lift(numerator=x1, denominator=y1, control_numerator=x0, control_denominator=y0)

    boot = np.random.default_rng(8)
    draws = 4000
    i1 = boot.integers(0, len(x1), (draws, len(x1)))
    i0 = boot.integers(0, len(x0), (draws, len(x0)))
    r1 = x1[i1].sum(axis=1) / y1[i1].sum(axis=1)
    r0 = x0[i0].sum(axis=1) / y0[i0].sum(axis=1)
    boot_se = (r1 - r0).std(ddof=1)
    boot_rel_se = (r1 / r0 - 1).std(ddof=1)
    delta_se = (lift.abs_ci_high - lift.abs_ci_low) / (2 * Z95)
    delta_rel_se = (lift.rel_ci_high - lift.rel_ci_low) / (2 * Z95)

    assert boot_se == pytest.approx(delta_se, rel=0.10)
    assert boot_rel_se == pytest.approx(delta_rel_se, rel=0.10)
    assert 2 * stats.norm.sf(abs(lift.abs_lift) / boot_se) == pytest.approx(lift.p_value, abs=0.02)


def test_ratio_estimate_of_equal_denominators_is_the_mean_and_its_standard_error():
    """With one impression per user the ratio is a mean and the delta variance is s^2/n."""
    x = [0, 1, 1, 0, 1, 1, 1, 0]
    ratio, var = ratio_estimate(x, [1] * len(x))

    assert ratio == pytest.approx(np.mean(x))
    assert var == pytest.approx(np.var(x, ddof=1) / len(x))


# --- mean per user: Welch ----------------------------------------------------------------

WELCH_CASES = [
    ([3, 5, 4, 6, 8, 2, 4, 5], [2, 3, 1, 4, 3, 2]),
    ([0, 0, 0, 1, 7, 2, 0, 0, 3, 1], [1, 0, 0, 0, 2]),
    ([4.5, 4.0, 3.5, 5.0], [3.0, 2.5, 4.0, 3.5, 3.0, 2.0]),
]


@pytest.mark.parametrize(("a", "b"), WELCH_CASES)
def test_mean_lift_is_welch_as_in_scipy_and_statsmodels(a, b):
    lift = mean_lift(values=a, control_values=b)
    scipy_p = stats.ttest_ind(a, b, equal_var=False).pvalue
    compare = CompareMeans(DescrStatsW(np.asarray(a, float)), DescrStatsW(np.asarray(b, float)))
    _, sm_p, _ = compare.ttest_ind(usevar="unequal")
    low, high = compare.tconfint_diff(alpha=0.05, usevar="unequal")

    assert lift.abs_lift == pytest.approx(np.mean(a) - np.mean(b), abs=1e-12)
    assert lift.p_value == pytest.approx(scipy_p, abs=1e-12)
    assert lift.p_value == pytest.approx(sm_p, abs=1e-12)
    assert (lift.abs_ci_low, lift.abs_ci_high) == pytest.approx((low, high), abs=1e-12)
    assert lift.rel_lift == pytest.approx(np.mean(a) / np.mean(b) - 1, abs=1e-12)
    assert lift.rel_ci_low < lift.rel_lift < lift.rel_ci_high


# --- proportion ----------------------------------------------------------------------------


def test_proportion_lift_keeps_compare_proportions_and_adds_a_relative_interval():
    lift = proportion_lift(converted=120, exposed=1000, control_converted=100, control_exposed=1000)
    p1, p0 = 0.12, 0.10
    rel_se = math.sqrt(p1 * (1 - p1) / 1000 / p0**2 + p1**2 * p0 * (1 - p0) / 1000 / p0**4)

    assert (lift.value, lift.control_value, lift.abs_lift) == pytest.approx((0.12, 0.10, 0.02))
    assert lift.rel_lift == pytest.approx(0.2)
    assert (lift.rel_ci_low, lift.rel_ci_high) == pytest.approx(
        (0.2 - Z95 * rel_se, 0.2 + Z95 * rel_se), abs=1e-9
    )
    assert lift.p_value == pytest.approx(stats.norm.sf(0.02 / math.sqrt(0.11 * 0.89 / 500)) * 2)


# --- edge cases: a reason, never NaN --------------------------------------------------------


def ratio(x1, y1, x0, y0):
    return ratio_lift(numerator=x1, denominator=y1, control_numerator=x0, control_denominator=y0)


@pytest.mark.parametrize(
    ("compute", "reason"),
    [
        (lambda: ratio([], [], [1, 2], [3, 4]), EMPTY_ARM),
        (lambda: ratio([1], [2], [1, 2], [3, 4]), ONE_USER),
        (lambda: ratio([0, 0], [0, 0], [1, 2], [3, 4]), ZERO_DENOMINATOR),
        (lambda: ratio([1, 2], [2, 4], [1, 1], [2, 2]), ZERO_VARIANCE),
        (lambda: ratio([1, 2], [3, 4], [0, 0], [3, 4]), ZERO_CONTROL),
        (lambda: mean_lift(values=[], control_values=[1, 2]), EMPTY_ARM),
        (lambda: mean_lift(values=[1, 2], control_values=[3]), ONE_USER),
        (lambda: mean_lift(values=[2, 2, 2], control_values=[1, 1]), ZERO_VARIANCE),
        (lambda: mean_lift(values=[1, 2, 0], control_values=[0, 0]), ZERO_CONTROL),
        (
            lambda: proportion_lift(converted=1, exposed=0, control_converted=0, control_exposed=3),
            EMPTY_ARM,
        ),
        (
            lambda: proportion_lift(converted=1, exposed=1, control_converted=0, control_exposed=3),
            ONE_USER,
        ),
        (
            lambda: proportion_lift(converted=4, exposed=4, control_converted=3, control_exposed=3),
            ZERO_VARIANCE,
        ),
        (
            lambda: proportion_lift(converted=2, exposed=4, control_converted=0, control_exposed=3),
            ZERO_CONTROL,
        ),
    ],
)
def test_edge_cases_give_a_reason_and_no_nan(compute, reason):
    lift = compute()

    assert lift.reason == reason
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in lift.as_dict().values())


def test_a_zero_control_still_gives_the_absolute_lift_and_its_test():
    lift = ratio([1, 2], [3, 4], [0, 0], [3, 4])

    assert lift.abs_lift == pytest.approx(3 / 7) and lift.p_value is not None
    assert lift.rel_lift is lift.rel_ci_low is lift.rel_ci_high is None


# --- multiple testing ----------------------------------------------------------------------

P_FAMILIES = [
    [0.01, 0.04, 0.03, 0.2, 0.001],
    [0.05, 0.05, 0.01, 0.5, 0.9, 0.049, 0.0001, 0.3],
    [0.7],
    np.random.default_rng(3).uniform(0, 0.2, 40).tolist(),
]


@pytest.mark.parametrize("p_values", P_FAMILIES)
@pytest.mark.parametrize(("method", "statsmodels_method"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjusted_p_values_equal_statsmodels(p_values, method, statsmodels_method):
    expected = multipletests(p_values, method=statsmodels_method)[1]

    assert adjust_p_values(p_values, method) == pytest.approx(expected.tolist(), abs=1e-12)


def test_untested_entries_stay_out_of_the_family():
    p_values = [0.01, None, 0.04, 0.03]
    expected = multipletests([0.01, 0.04, 0.03], method="holm")[1].tolist()

    assert adjust_p_values(p_values) == pytest.approx(
        [expected[0], None, expected[1], expected[2]], abs=1e-12
    )
    assert adjust_p_values([]) == []
    with pytest.raises(ValueError, match="holm, bh"):
        adjust_p_values([0.1], "bonferroni")


# --- calibration by seeded simulation --------------------------------------------------------

RUNS = 500
USERS = 400
# Three standard errors of a 0.05 rate over 500 runs: 0.029.
SIM_TOLERANCE = 3 * math.sqrt(0.05 * 0.95 / RUNS)


def naive_impression_z(x1, y1, x0, y0):
    """What a chart of "like rate" invites: every impression an independent trial (documented
    as wrong: impressions of one user are correlated). Never used for inference."""
    p1, p0 = x1.sum() / y1.sum(), x0.sum() / y0.sum()
    pooled = (x1.sum() + x0.sum()) / (y1.sum() + y0.sum())
    se = math.sqrt(pooled * (1 - pooled) * (1 / y1.sum() + 1 / y0.sum()))
    return 2 * stats.norm.sf(abs(p1 - p0) / se)


def test_aa_false_positives_are_calibrated_and_the_naive_z_test_is_not():
    """Seeded: ratio 0.034, Welch 0.028, naive per-impression z 0.224 (numpy 2.4)."""
    rng = np.random.default_rng(2013)
    ratio_hits = welch_hits = naive_hits = 0
    for _ in range(RUNS):
        x1, y1 = engaged_users(rng, USERS)
        x0, y0 = engaged_users(rng, USERS)
        ratio_hits += ratio(x1, y1, x0, y0).p_value < 0.05
        welch_hits += mean_lift(values=x1, control_values=x0).p_value < 0.05
        naive_hits += naive_impression_z(x1, y1, x0, y0) < 0.05

    assert abs(ratio_hits / RUNS - 0.05) < SIM_TOLERANCE
    assert abs(welch_hits / RUNS - 0.05) < SIM_TOLERANCE
    # The per-impression z-test ignores that one user's impressions are correlated.
    assert naive_hits / RUNS > 0.15


def test_intervals_cover_a_planted_lift_95_percent_of_the_time():
    """Treatment multiplies every user's like propensity by 1.05: the true ratio difference is
    0.2 * 0.05 = 0.01 and the true relative lift 0.05 (impressions are independent of
    propensity, so the ratio of expectations is E[p] * lift). Seeded: 0.940 and 0.938."""
    rng = np.random.default_rng(5)
    abs_covered = rel_covered = 0
    for _ in range(RUNS):
        x1, y1 = engaged_users(rng, USERS, lift=1.05)
        x0, y0 = engaged_users(rng, USERS)
        lift = ratio(x1, y1, x0, y0)
        abs_covered += lift.abs_ci_low <= 0.01 <= lift.abs_ci_high
        rel_covered += lift.rel_ci_low <= 0.05 <= lift.rel_ci_high

    assert abs(abs_covered / RUNS - 0.95) < 3 * math.sqrt(0.05 * 0.95 / RUNS)
    assert abs(rel_covered / RUNS - 0.95) < 3 * math.sqrt(0.05 * 0.95 / RUNS)
