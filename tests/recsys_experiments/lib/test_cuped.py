"""CUPED (Deng, Xu, Kohavi & Walker 2013) in recsys_experiments/lib/statistics.py: on seeded
simulated data with a known pre/post correlation rho the variance of the lift falls by rho^2,
the adjusted lift stays unbiased, it equals an OLS fit with the centred covariate (statsmodels)
given the same slope, and without pre-period data it is the plain lift exactly."""

import numpy as np
import pytest
import statsmodels.api as sm

from recsys_experiments.lib.statistics import (
    cuped_mean_lift,
    cuped_proportion_lift,
    cuped_ratio_lift,
    cuped_theta,
    mean_lift,
    proportion_lift,
    ratio_lift,
)


def correlated(rng, n, rho, effect=0.0):
    """(post, pre) per user: pre ~ N(10, 2^2), post = 5 + effect + rho-correlated, sd 3."""
    x = rng.normal(10, 2, n)
    y = 5 + effect + 3 * (rho * (x - 10) / 2 + np.sqrt(1 - rho**2) * rng.normal(0, 1, n))
    return y, x


def mean_arms(seed, n, rho, effect):
    rng = np.random.default_rng(seed)
    y1, x1 = correlated(rng, n, rho, effect)
    y0, x0 = correlated(rng, n, rho)
    return {"values": y1, "covariates": x1, "control_values": y0, "control_covariates": x0}


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.9])
def test_variance_reduction_is_rho_squared(rho):
    result = cuped_mean_lift(**mean_arms(seed=11, n=20_000, rho=rho, effect=0.1))

    assert result.variance_reduction == pytest.approx(rho**2, abs=0.01)
    plain = mean_lift(
        values=mean_arms(11, 20_000, rho, 0.1)["values"],
        control_values=mean_arms(11, 20_000, rho, 0.1)["control_values"],
    )
    width = result.lift.abs_ci_high - result.lift.abs_ci_low
    plain_width = plain.abs_ci_high - plain.abs_ci_low
    assert width / plain_width == pytest.approx(np.sqrt(1 - rho**2), abs=0.01)


def test_over_simulations_unbiased_and_its_variance_falls_by_rho_squared():
    rho, effect, runs = 0.7, 0.2, 400
    plain, adjusted, reported = [], [], []
    for seed in range(runs):
        arms = mean_arms(seed, 300, rho, effect)
        result = cuped_mean_lift(**arms)
        adjusted.append(result.lift.abs_lift)
        reported.append(result.variance_reduction)
        plain.append(arms["values"].mean() - arms["control_values"].mean())
    adjusted, plain = np.array(adjusted), np.array(plain)

    # The truth: effect 0.2; the simulation error of a mean of 400 estimates is sd / 20.
    assert abs(adjusted.mean() - effect) < 3 * adjusted.std(ddof=1) / np.sqrt(runs)
    assert adjusted.var(ddof=1) / plain.var(ddof=1) == pytest.approx(1 - rho**2, abs=0.08)
    assert np.mean(reported) == pytest.approx(rho**2, abs=0.02)


def test_adjusted_lift_equals_ols_with_the_centred_covariate():
    arms = mean_arms(seed=3, n=500, rho=0.5, effect=0.3)
    y = np.concatenate([arms["values"], arms["control_values"]])
    x = np.concatenate([arms["covariates"], arms["control_covariates"]])
    treated = np.concatenate([np.ones(500), np.zeros(500)])
    design = sm.add_constant(np.column_stack([treated, x - x.mean()]))
    fit = sm.OLS(y, design).fit()

    # With OLS's slope (within-arm) as theta the two are the same estimator.
    same_slope = cuped_mean_lift(**arms, theta=float(fit.params[2]))
    assert same_slope.lift.abs_lift == pytest.approx(fit.params[1], abs=1e-10)
    # The pooled theta (cov / var over both arms together) differs from OLS's slope only by
    # the treatment's share of cov(Y, X): far less than the standard error.
    pooled = cuped_mean_lift(**arms)
    assert pooled.theta == pytest.approx(cuped_theta(y, x), abs=0)
    assert pooled.theta == pytest.approx(fit.params[2], rel=0.02)
    assert abs(pooled.lift.abs_lift - fit.params[1]) < 0.01 * fit.bse[1]
    # Its standard error (Welch, per-arm variances) is OLS's (pooled residual variance) here.
    half_width = pooled.lift.abs_ci_high - pooled.lift.abs_lift
    assert half_width / 1.96 == pytest.approx(fit.bse[1], rel=0.01)


@pytest.mark.parametrize("pre", [0.0, 3.0])
def test_without_pre_period_data_every_kind_is_the_plain_lift_exactly(pre):
    rng = np.random.default_rng(5)
    values, control = rng.poisson(3, 40).astype(float), rng.poisson(2.5, 35).astype(float)
    mean = cuped_mean_lift(
        values=values,
        covariates=[pre] * 40,
        control_values=control,
        control_covariates=[pre] * 35,
    )
    assert mean.lift == mean_lift(values=values, control_values=control)
    assert mean.variance_reduction is None and mean.theta == 0

    flags, control_flags = values > 2, control > 2
    share = cuped_proportion_lift(
        converted=flags,
        covariates=[pre] * 40,
        control_converted=control_flags,
        control_covariates=[pre] * 35,
    )
    assert share.lift == proportion_lift(
        converted=int(flags.sum()),
        exposed=40,
        control_converted=int(control_flags.sum()),
        control_exposed=35,
    )
    assert share.variance_reduction is None

    impressions, control_impressions = values + 5, control + 5
    ratio = cuped_ratio_lift(
        numerator=values,
        denominator=impressions,
        pre_numerator=[pre] * 40,
        pre_denominator=[pre] * 40,
        control_numerator=control,
        control_denominator=control_impressions,
        control_pre_numerator=[pre] * 35,
        control_pre_denominator=[pre] * 35,
    )
    assert ratio.lift == ratio_lift(
        numerator=values,
        denominator=impressions,
        control_numerator=control,
        control_denominator=control_impressions,
    )
    assert ratio.variance_reduction is None


def propensity_users(rng, n, lift=1.0):
    """Per user a lasting like propensity ~ Beta(2, 8): pre and post impressions
    1 + Poisson(10) each, likes Binomial(impressions, propensity) (post times `lift`)."""
    p = rng.beta(2, 8, n)
    pre_imp, post_imp = 1 + rng.poisson(10, n), 1 + rng.poisson(10, n)
    pre_likes = rng.binomial(pre_imp, p)
    post_likes = rng.binomial(post_imp, np.minimum(p * lift, 1))
    return post_likes, post_imp, pre_likes, pre_imp


def ratio_arms(seed, n, lift):
    rng = np.random.default_rng(seed)
    y, d, x, e = propensity_users(rng, n, lift)
    cy, cd, cx, ce = propensity_users(rng, n)
    return {
        "numerator": y,
        "denominator": d,
        "pre_numerator": x,
        "pre_denominator": e,
        "control_numerator": cy,
        "control_denominator": cd,
        "control_pre_numerator": cx,
        "control_pre_denominator": ce,
    }


def test_ratio_cuped_unbiased_with_the_reduction_it_reports():
    runs, plain, adjusted, reported = 300, [], [], []
    for seed in range(runs):
        arms = ratio_arms(seed, 400, lift=1.1)
        result = cuped_ratio_lift(**arms)
        adjusted.append(result.lift.abs_lift)
        reported.append(result.variance_reduction)
        plain.append(
            arms["numerator"].sum() / arms["denominator"].sum()
            - arms["control_numerator"].sum() / arms["control_denominator"].sum()
        )
    adjusted, plain = np.array(adjusted), np.array(plain)

    # Impressions are independent of the propensity: the truth is 1.1 E[p] - E[p] = 0.02.
    assert abs(adjusted.mean() - 0.02) < 3 * adjusted.std(ddof=1) / np.sqrt(runs)
    achieved = 1 - adjusted.var(ddof=1) / plain.var(ddof=1)
    assert 0.2 < np.mean(reported) < 0.6
    assert achieved == pytest.approx(np.mean(reported), abs=0.08)


def test_ratio_cuped_variance_is_the_delta_method_of_the_linearised_ratio():
    arms = ratio_arms(seed=8, n=300, lift=1.0)
    result = cuped_ratio_lift(**arms)

    def linear(x, y):
        return (x - x.sum() / y.sum() * y) / y.mean()

    pairs = [
        (linear(arms["numerator"], arms["denominator"]),
         linear(arms["pre_numerator"], arms["pre_denominator"])),
        (linear(arms["control_numerator"], arms["control_denominator"]),
         linear(arms["control_pre_numerator"], arms["control_pre_denominator"])),
    ]  # fmt: skip
    theta = sum(np.cov(u, v)[0, 1] for u, v in pairs) / sum(v.var(ddof=1) for _, v in pairs)
    var = sum((u - theta * v).var(ddof=1) / len(u) for u, v in pairs)
    pooled_pre = (arms["pre_numerator"].sum() + arms["control_pre_numerator"].sum()) / (
        arms["pre_denominator"].sum() + arms["control_pre_denominator"].sum()
    )
    value = arms["numerator"].sum() / arms["denominator"].sum() - theta * (
        arms["pre_numerator"].sum() / arms["pre_denominator"].sum() - pooled_pre
    )

    assert result.theta == pytest.approx(theta, rel=1e-12)
    assert result.lift.value == pytest.approx(value, rel=1e-12)
    half = result.lift.abs_ci_high - result.lift.abs_lift
    assert half == pytest.approx(1.959963984540054 * np.sqrt(var), rel=1e-9)


def test_proportion_cuped_reduces_by_the_squared_correlation_of_the_flags():
    rng = np.random.default_rng(21)
    n = 20_000
    latent = rng.normal(0, 1, (2, n))
    pre = latent + rng.normal(0, 0.7, (2, n)) > 0.5
    post = latent + rng.normal(0, 0.7, (2, n)) > 0.5
    result = cuped_proportion_lift(
        converted=post[0],
        covariates=pre[0].astype(float),
        control_converted=post[1],
        control_covariates=pre[1].astype(float),
    )
    r = np.corrcoef(post.ravel(), pre.ravel())[0, 1]

    assert result.variance_reduction == pytest.approx(r**2, abs=0.01)
    assert abs(result.lift.abs_lift) < result.lift.abs_ci_high - result.lift.abs_lift
