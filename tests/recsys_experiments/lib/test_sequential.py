"""Always-valid (sequential) inference: the confidence sequence against the paper's formula,
the p-value as the smallest alpha whose sequence excludes 0, every metric kind, and the
peeking simulation of issue 15: daily looks for 14 days, stopping at the first significant
look. Seeded and exact; the larger run is marked `slow` (pytest -m slow)."""

import math

import numpy as np
import pytest
from scipy import optimize, stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from recsys_experiments.lib.statistics import (
    Sequential,
    mean_lift,
    proportion_lift,
    ratio_estimate,
    ratio_lift,
    sequential_half_width,
    sequential_p_value,
    sequential_rho,
)

TUNING = 5000


def paper_half_width(se, n, tuning, alpha=0.05):
    """Waudby-Smith et al. / Howard et al. (2021) asymptotic confidence sequence for a mean
    with per-unit variance sigma^2 after t units, written as in the paper:
    sqrt(2 (t sigma^2 r^2 + 1) / (t^2 r^2) log(sqrt(t sigma^2 r^2 + 1) / alpha)), where
    GrowthBook's standardised rho is r * sigma (so r = rho / sigma), here with sigma^2 =
    n se^2 (the estimate's per-user variance)."""
    sigma2 = n * se**2
    r2 = sequential_rho(tuning) ** 2 / sigma2
    return math.sqrt(2 * (n * sigma2 * r2 + 1) / (n**2 * r2) * math.log(
        math.sqrt(n * sigma2 * r2 + 1) / alpha
    ))  # fmt: skip


def test_rho_is_tuned_for_n_star_as_in_the_paper():
    # Howard et al. (2021) eq. 161 with alpha = 0.05 and n* = 5000.
    log_alpha = math.log(0.05)
    assert sequential_rho(5000) == pytest.approx(
        math.sqrt((-2 * log_alpha + math.log(1 - 2 * log_alpha)) / 5000), rel=1e-15
    )
    # The tuning makes the sequence tightest (relative to the fixed interval) near n*...
    ratio = {
        n: float(sequential_half_width(1 / math.sqrt(n), n, tuning=5000)) * math.sqrt(n) / 1.96
        for n in (500, 2000, 5000, 10000, 50000)
    }
    assert ratio[5000] == min(ratio.values()) and ratio[5000] == pytest.approx(1.5486, abs=1e-4)
    # ... and the n* that minimises the width at 5,000 users is 5,000 within the accuracy of
    # the paper's closed-form approximation (eq. 161).
    best = optimize.minimize_scalar(
        lambda t: float(sequential_half_width(1, 5000, tuning=t)),
        bounds=(100, 100_000),
        method="bounded",
    ).x
    assert best == pytest.approx(5000, rel=0.05)


@pytest.mark.parametrize(("se", "n"), [(0.01, 2000), (0.003, 40000), (0.2, 30)])
def test_half_width_equals_the_papers_formula(se, n):
    assert float(sequential_half_width(se, n, tuning=TUNING)) == pytest.approx(
        paper_half_width(se, n, TUNING), rel=1e-12
    )


@pytest.mark.parametrize(("z", "n"), [(0.5, 200), (2.5, 1000), (3.1, 8000), (4.0, 100000)])
def test_p_value_is_the_smallest_alpha_whose_sequence_excludes_zero(z, n):
    se = 0.01
    rho2 = sequential_rho(TUNING) ** 2  # rho stays tuned at alpha 0.05

    def margin(alpha):  # |estimate| minus the half-width of the (1 - alpha) sequence
        a = n * rho2
        return abs(z * se) - se * math.sqrt(2 * (a + 1) / a * math.log(math.sqrt(a + 1) / alpha))

    p = float(sequential_p_value(z, n, tuning=TUNING))
    if margin(1.0) <= 0:  # not even the 0% sequence excludes 0
        assert p == 1.0
        return
    root = optimize.brentq(margin, 1e-300, 1.0, xtol=1e-300, rtol=1e-14)
    assert p == pytest.approx(root, rel=1e-9)
    # And at the 95% level the two agree: p < 0.05 exactly when the sequence excludes 0.
    assert (p < 0.05) == (abs(z * se) > float(sequential_half_width(se, n, tuning=TUNING)))


def test_every_metric_kind_gets_the_sequence_on_its_own_standard_errors():
    rng = np.random.default_rng(7)
    mode = Sequential(TUNING)
    # ratio: the delta-method variances feed the sequence.
    x1, y1 = rng.poisson(3, 300), 1 + rng.poisson(10, 300)
    x0, y0 = rng.poisson(3, 280), 1 + rng.poisson(10, 280)
    lift = ratio_lift(numerator=x1, denominator=y1, control_numerator=x0,
                      control_denominator=y0, sequential=mode)  # fmt: skip
    (r1, v1), (r0, v0) = ratio_estimate(x1, y1), ratio_estimate(x0, y0)
    se = math.sqrt(v1 + v0)
    width = paper_half_width(se, 580, TUNING)
    assert lift.sequential is True and lift.std_error == pytest.approx(se, rel=1e-12)
    assert (lift.abs_ci_low, lift.abs_ci_high) == pytest.approx(
        (r1 - r0 - width, r1 - r0 + width), rel=1e-12
    )
    rel_se = math.sqrt(v1 / r0**2 + r1**2 * v0 / r0**4)
    rel_width = paper_half_width(rel_se, 580, TUNING)
    assert (lift.rel_ci_low, lift.rel_ci_high) == pytest.approx(
        (r1 / r0 - 1 - rel_width, r1 / r0 - 1 + rel_width), rel=1e-12
    )
    assert lift.p_value == pytest.approx(
        float(sequential_p_value((r1 - r0) / se, 580, tuning=TUNING)), rel=1e-12
    )
    # mean: the sequence is normal (asymptotic), not Student's t.
    a, b = rng.exponential(2.0, 150), rng.exponential(2.2, 170)
    lift = mean_lift(values=a, control_values=b, sequential=mode)
    se = math.sqrt(a.var(ddof=1) / 150 + b.var(ddof=1) / 170)
    assert lift.abs_ci_high - lift.abs_lift == pytest.approx(
        paper_half_width(se, 320, TUNING), rel=1e-12
    )
    # proportion: the unpooled (Wald) standard error, so interval and p-value agree.
    lift = proportion_lift(converted=130, exposed=1000, control_converted=100,
                           control_exposed=1000, sequential=mode)  # fmt: skip
    se = math.sqrt(0.13 * 0.87 / 1000 + 0.1 * 0.9 / 1000)
    assert lift.abs_ci_high - lift.abs_lift == pytest.approx(
        paper_half_width(se, 2000, TUNING), rel=1e-12
    )
    assert (lift.p_value < 0.05) == (lift.abs_ci_low > 0)


def test_the_fixed_horizon_path_still_equals_statsmodels_and_scipy():
    fixed = proportion_lift(converted=130, exposed=1000, control_converted=100,
                            control_exposed=1000)  # fmt: skip
    _, p = proportions_ztest([130, 100], [1000, 1000])
    low, high = confint_proportions_2indep(130, 1000, 100, 1000, method="wald", compare="diff")
    assert fixed.sequential is False
    assert fixed.p_value == pytest.approx(p, abs=1e-12)
    assert (fixed.abs_ci_low, fixed.abs_ci_high) == pytest.approx((low, high), abs=1e-12)
    rng = np.random.default_rng(3)
    a, b = rng.normal(1.1, 2, 80), rng.normal(1.0, 3, 90)
    welch = stats.ttest_ind(a, b, equal_var=False)
    assert mean_lift(values=a, control_values=b).p_value == pytest.approx(welch.pvalue, 1e-12)
    # The sequence is wider than the fixed interval on the same data.
    sequential = proportion_lift(converted=130, exposed=1000, control_converted=100,
                                 control_exposed=1000, sequential=Sequential())  # fmt: skip
    assert sequential.abs_ci_low < fixed.abs_ci_low and sequential.abs_ci_high > fixed.abs_ci_high
    assert sequential.p_value > fixed.p_value


def test_tuning_must_be_a_positive_number():
    for bad in (0, -5, math.nan, math.inf, "5000"):
        with pytest.raises(ValueError, match="tuning"):
            Sequential(bad)


# --- the peeking simulation ------------------------------------------------------------------


def peeking(runs: int, *, days: int = 14, per_day: int = 150, seed: int = 15) -> dict:
    """A/A experiments (two arms, per_day new users each per day) looked at once a day for
    `days` days, stopping at the first significant look (p < 0.05). Two metrics on the same
    users: a conversion (proportion, rate 0.1) and a skewed value per user (mean of a
    lognormal). Returns the share of runs stopped with a false positive (fixed-horizon tests
    and always-valid ones) and the coverage of the 95% confidence sequence at the end."""
    rng = np.random.default_rng(seed)
    n = per_day * np.arange(1, days + 1)  # users per arm at each look
    total = 2 * n
    out = {}
    # Proportion: conversions per arm and day.
    c1 = rng.binomial(per_day, 0.1, (runs, days)).cumsum(axis=1)
    c0 = rng.binomial(per_day, 0.1, (runs, days)).cumsum(axis=1)
    p1, p0 = c1 / n, c0 / n
    se = np.sqrt(p1 * (1 - p1) / n + p0 * (1 - p0) / n)
    pooled = (c1 + c0) / total
    fixed = 2 * stats.norm.sf(np.abs(p1 - p0) / np.sqrt(pooled * (1 - pooled) * 2 / n))
    sequential = sequential_p_value((p1 - p0) / se, total, tuning=TUNING)
    width = sequential_half_width(se[:, -1], total[-1], tuning=TUNING)
    out["proportion"] = {
        "fixed": float((fixed < 0.05).any(axis=1).mean()),
        "sequential": float((sequential < 0.05).any(axis=1).mean()),
        "coverage": float((np.abs(p1 - p0)[:, -1] <= width).mean()),
    }
    # Mean of a skewed value: per-user lognormal values, summed per day.
    values = rng.lognormal(0.0, 1.0, (2, runs, days, per_day))
    sums = values.sum(axis=3).cumsum(axis=2)
    squares = (values**2).sum(axis=3).cumsum(axis=2)
    means = sums / n
    variances = (squares - n * means**2) / (n - 1) / n  # of each arm's mean
    diff, v = means[0] - means[1], variances[0] + variances[1]
    df = v**2 / (variances[0] ** 2 / (n - 1) + variances[1] ** 2 / (n - 1))
    fixed = 2 * stats.t.sf(np.abs(diff) / np.sqrt(v), df)
    sequential = sequential_p_value(diff / np.sqrt(v), total, tuning=TUNING)
    width = sequential_half_width(np.sqrt(v[:, -1]), total[-1], tuning=TUNING)
    out["mean"] = {
        "fixed": float((fixed < 0.05).any(axis=1).mean()),
        "sequential": float((sequential < 0.05).any(axis=1).mean()),
        "coverage": float((np.abs(diff[:, -1]) <= width).mean()),
        "first_run": (values[0, 0].ravel(), values[1, 0].ravel()),
        "first_p": (float(fixed[0, -1]), float(sequential[0, -1])),
    }
    return out


def check_peeking(result: dict, runs: int) -> None:
    margin = 2 * math.sqrt(0.05 * 0.95 / runs)  # two simulation standard errors
    for metric in ("proportion", "mean"):
        rates = result[metric]
        assert rates["sequential"] <= 0.05 + margin, (metric, rates)
        assert rates["fixed"] > 0.20, (metric, rates)
        assert rates["coverage"] >= 0.95, (metric, rates)


def test_peeking_daily_for_14_days_sequential_stays_below_5_percent_where_fixed_exceeds_20():
    runs = 2000
    result = peeking(runs)
    check_peeking(result, runs)
    # Exact, seeded numbers (the same on every machine).
    assert (result["proportion"]["fixed"], result["proportion"]["sequential"]) == (
        pytest.approx(EXPECTED["proportion"][0], abs=1e-12),
        pytest.approx(EXPECTED["proportion"][1], abs=1e-12),
    )
    assert (result["mean"]["fixed"], result["mean"]["sequential"]) == (
        pytest.approx(EXPECTED["mean"][0], abs=1e-12),
        pytest.approx(EXPECTED["mean"][1], abs=1e-12),
    )
    # The vectorised simulation is the library's own computation: run one simulated A/A
    # through mean_lift (fixed and sequential) and get the same p-values at the last look.
    treatment, control = result["mean"]["first_run"]
    fixed = mean_lift(values=treatment, control_values=control)
    sequential = mean_lift(values=treatment, control_values=control, sequential=Sequential())
    assert (fixed.p_value, sequential.p_value) == pytest.approx(result["mean"]["first_p"], 1e-9)


# (fixed, sequential) false-positive rates of the seeded 2,000-run simulation.
EXPECTED = {"proportion": (0.231, 0.0065), "mean": (0.226, 0.008)}


@pytest.mark.slow
def test_peeking_at_scale():
    runs = 20000
    check_peeking(peeking(runs, seed=1500), runs)
