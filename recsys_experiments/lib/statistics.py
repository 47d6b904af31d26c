"""Experiment statistics: pure functions over counts, with scipy's distributions.

- Versus control, per variant and outcome type: absolute and relative lift, the 95% Wald
  confidence interval of the difference (unpooled standard error), and the two-sided p-value
  of the pooled two-proportion z-test. These equal statsmodels' `proportions_ztest` and
  `confint_proportions_2indep(method="wald")` (the tests compare them).
- Sample ratio mismatch: chi-squared test of exposed users per variant against the weights.

Where the data cannot answer (no exposed users, a rate of 0 or 1 on both sides) the result
says so with `None` values and a reason, never NaN.

Metric lifts (`Lift`, one shape for every metric kind; docs/recsys-experiments.md, "Metrics
and inference"):
- ratio (`ratio_lift`): sum of numerator events / sum of denominator events per variant
  (likes per impression); the user is the unit of randomisation, so the variance comes from the
  delta method over per-user (numerator, denominator) pairs, clustered by user; z-test.
- mean per user (`mean_lift`): one value per user; Welch's t-test (unequal variances).
- proportion (`proportion_lift`): users with at least one event, `compare_proportions`.
Each gives the absolute lift with its CI and p-value, and the relative lift with a CI from the
delta method for a ratio of two independent estimates.
- CUPED (`cuped_mean_lift`, `cuped_proportion_lift`, `cuped_ratio_lift`; Deng et al. 2013):
  the same lifts adjusted by each user's pre-period value of the metric, with the variance
  reduction achieved; without pre-period data exactly the plain lifts.
- Multiple testing (`adjust_p_values`): Holm (default) or Benjamini-Hochberg, equal to
  statsmodels' `multipletests(method="holm" | "fdr_bh")`.

Sequential (always-valid) inference (`Sequential`, passed as `sequential=` to every lift
function): the asymptotic confidence sequence of Waudby-Smith, Arnold, Wu, Howard, Ramdas &
Sekhon, "Anytime-valid inference" / Howard, Ramdas, McAuliffe & Sekhon (2021),
"Time-uniform, nonparametric, nonasymptotic confidence sequences", Ann. Statist. 49(2), with
the normal mixture of GrowthBook's gbstats: for an estimate with standard error `se` on `n`
users in all, the half-width is

    se * sqrt(2 (n rho^2 + 1) / (n rho^2) * log(sqrt(n rho^2 + 1) / alpha))

with rho = sqrt((-2 log alpha + log(-2 log alpha + 1)) / n*) (Howard et al., eq. 161: the
sequence is tightest at n* users, the tuning parameter). The always-valid p-value is the
smallest alpha whose sequence (same rho) excludes 0, in closed form
min(1, sqrt(1 + n rho^2) exp(-z^2 n rho^2 / (2 (1 + n rho^2)))) with z = estimate / se: the
reciprocal of the normal-mixture martingale, so P(some look has p <= alpha) <= alpha.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
SRM_ALPHA = 0.001
# n* of the confidence sequence when settings give none (GrowthBook's default).
SEQUENTIAL_TUNING = 5000


@dataclass(frozen=True)
class Sequential:
    """Always-valid inference tuned for `tuning` users in all (n*, the sample where the
    sequence is tightest)."""

    tuning: float = SEQUENTIAL_TUNING

    def __post_init__(self):
        if not (isinstance(self.tuning, int | float) and math.isfinite(self.tuning)) or (
            self.tuning < 1
        ):
            raise ValueError("the sequential tuning parameter must be a number >= 1")


def sequential_rho(tuning: float, alpha: float = 1 - CONFIDENCE) -> float:
    """The mixing parameter rho that makes the sequence tightest at `tuning` users
    (Howard et al. 2021, eq. 161; GrowthBook's gbstats)."""
    log_alpha = math.log(alpha)
    return math.sqrt((-2 * log_alpha + math.log(-2 * log_alpha + 1)) / tuning)


def sequential_half_width(se, n, *, tuning: float, alpha: float = 1 - CONFIDENCE):
    """Half-width of the asymptotic confidence sequence at level 1 - alpha for an estimate
    with standard error `se` on `n` users in all. Works on numpy arrays (the simulations)."""
    a = np.asarray(n, dtype=float) * sequential_rho(tuning, alpha) ** 2
    return np.asarray(se, dtype=float) * np.sqrt(2 * (a + 1) / a * np.log(np.sqrt(a + 1) / alpha))


def sequential_p_value(z, n, *, tuning: float, alpha: float = 1 - CONFIDENCE):
    """Always-valid two-sided p-value of z = estimate / se on `n` users: the smallest alpha'
    whose sequence (rho tuned at `alpha`) excludes 0. Works on numpy arrays."""
    a = np.asarray(n, dtype=float) * sequential_rho(tuning, alpha) ** 2
    z = np.asarray(z, dtype=float)
    log_p = 0.5 * np.log1p(a) - z**2 * a / (2 * (1 + a))
    return np.minimum(1.0, np.exp(log_p))


@dataclass(frozen=True)
class Comparison:
    control_rate: float | None
    rate: float | None
    abs_lift: float | None
    rel_lift: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    note: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def compare_proportions(
    *, control_converted: int, control_exposed: int, converted: int, exposed: int
) -> Comparison:
    """A variant's conversion rate against control's."""
    if control_exposed <= 0 or exposed <= 0:
        return Comparison(None, None, None, None, None, None, None, "not enough data")
    p0, p1 = control_converted / control_exposed, converted / exposed
    diff = p1 - p0
    rel = diff / p0 if p0 > 0 else None
    z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
    se = math.sqrt(p1 * (1 - p1) / exposed + p0 * (1 - p0) / control_exposed)
    pooled = (converted + control_converted) / (exposed + control_exposed)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / exposed + 1 / control_exposed))
    if pooled_se == 0:
        # Both sides all-or-nothing and equal: no evidence of a difference either way.
        return Comparison(p0, p1, diff, rel, diff, diff, None, "no variance")
    p_value = 2 * stats.norm.sf(abs(diff / pooled_se))
    return Comparison(
        control_rate=p0,
        rate=p1,
        abs_lift=diff,
        rel_lift=rel,
        ci_low=_finite(diff - z * se),
        ci_high=_finite(diff + z * se),
        p_value=_finite(float(p_value)),
    )


def sample_ratio_mismatch(exposed: Sequence[int], weights: Sequence[float]) -> dict:
    """Chi-squared goodness of fit of exposed users per variant to the weights."""
    total = sum(exposed)
    if total == 0 or len(exposed) < 2:
        return {"p_value": None, "flagged": False, "note": "not enough data"}
    weight_sum = sum(weights)
    expected = [total * weight / weight_sum for weight in weights]
    statistic, p_value = stats.chisquare(list(exposed), expected)
    return {
        "p_value": float(p_value),
        "chi2": float(statistic),
        "flagged": bool(p_value < SRM_ALPHA),
        "note": None,
    }


# Why a lift cannot be computed (the `reason` of a `Lift`).
EMPTY_ARM = "empty arm: no users in a variant"
ONE_USER = "one user in a variant: no variance estimate"
ZERO_DENOMINATOR = "no denominator events in a variant"
ZERO_VARIANCE = "zero variance: every user has the same value"
ZERO_CONTROL = "control value is zero: no relative lift"


@dataclass(frozen=True)
class Lift:
    """A variant's metric against control's. Values the data cannot give are None (never NaN)
    and `reason` says why."""

    value: float | None
    control_value: float | None
    abs_lift: float | None = None
    abs_ci_low: float | None = None
    abs_ci_high: float | None = None
    rel_lift: float | None = None
    rel_ci_low: float | None = None
    rel_ci_high: float | None = None
    p_value: float | None = None
    reason: str | None = None
    # Standard error of abs_lift (the power estimates scale it); sequential: the CIs and
    # p-value are always-valid (Sequential) rather than fixed-horizon.
    std_error: float | None = None
    sequential: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def _relative(
    value: float, var: float, control: float, control_var: float, half_width
) -> tuple[float | None, float | None, float | None]:
    """value / control - 1 with the delta-method interval for a ratio of independent estimates:
    Var(a/b) ~ Var(a)/b^2 + a^2 Var(b)/b^4; `half_width(se)` gives the interval's half-width."""
    if control == 0:
        return None, None, None
    rel = value / control - 1
    se = math.sqrt(var / control**2 + value**2 * control_var / control**4)
    width = half_width(se)
    return rel, _finite(rel - width), _finite(rel + width)


def _lift(
    value: float,
    var: float,
    control: float,
    control_var: float,
    *,
    quantile: float,
    p_value: float | None,
    reason: str | None = None,
    sequential: Sequential | None = None,
    users: int = 0,
    alpha: float = 1 - CONFIDENCE,
) -> Lift:
    """The Lift of `value` (variance `var`) against `control`: fixed-horizon (interval
    +- quantile * se, the caller's p-value) or, with `sequential`, always-valid (the
    confidence sequence on `users` users in all, and its p-value from the unpooled se)."""
    diff = value - control
    se = math.sqrt(var + control_var)
    if sequential is None:

        def half_width(s: float) -> float:
            return quantile * s

    else:

        def half_width(s: float) -> float:
            return float(sequential_half_width(s, users, tuning=sequential.tuning, alpha=alpha))

        p_value = float(sequential_p_value(diff / se, users, tuning=sequential.tuning, alpha=alpha))
    rel, rel_low, rel_high = _relative(value, var, control, control_var, half_width)
    width = half_width(se)
    return Lift(
        value=value,
        control_value=control,
        abs_lift=diff,
        abs_ci_low=_finite(diff - width),
        abs_ci_high=_finite(diff + width),
        rel_lift=rel,
        rel_ci_low=rel_low,
        rel_ci_high=rel_high,
        p_value=None if p_value is None else _finite(p_value),
        reason=reason if reason else (ZERO_CONTROL if rel is None else None),
        std_error=_finite(se),
        sequential=sequential is not None,
    )


def ratio_estimate(numerator: Sequence[float], denominator: Sequence[float]) -> tuple[float, float]:
    """sum(x) / sum(y) over users and its delta-method variance, clustered by user:
    Var(R) ~ (s_x^2 - 2 R s_xy + R^2 s_y^2) / (n mean_y^2), sample (co)variances with n - 1."""
    x = np.asarray(numerator, dtype=float)
    y = np.asarray(denominator, dtype=float)
    n = len(x)
    mean_x, mean_y = x.mean(), y.mean()
    ratio = mean_x / mean_y
    cov = np.cov(x, y, ddof=1)
    var = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / (n * mean_y**2)
    return float(ratio), max(float(var), 0.0)


def ratio_lift(
    *,
    numerator: Sequence[float],
    denominator: Sequence[float],
    control_numerator: Sequence[float],
    control_denominator: Sequence[float],
    confidence: float = CONFIDENCE,
    sequential: Sequential | None = None,
) -> Lift:
    """Ratio metric (e.g. likes per impression) per variant from per-user numerator and
    denominator totals; the difference of the two ratios is tested with a z-test on the
    delta-method standard error."""
    if len(numerator) != len(denominator) or len(control_numerator) != len(control_denominator):
        raise ValueError("numerator and denominator need one entry per user")
    arms = ((numerator, denominator), (control_numerator, control_denominator))
    if any(len(x) == 0 for x, _ in arms):
        return Lift(None, None, reason=EMPTY_ARM)
    if any(sum(y) <= 0 for _, y in arms):
        values = [sum(x) / sum(y) if sum(y) > 0 else None for x, y in arms]
        return Lift(values[0], values[1], reason=ZERO_DENOMINATOR)
    if any(len(x) < 2 for x, _ in arms):
        return Lift(
            sum(numerator) / sum(denominator),
            sum(control_numerator) / sum(control_denominator),
            reason=ONE_USER,
        )
    value, var = ratio_estimate(numerator, denominator)
    control, control_var = ratio_estimate(control_numerator, control_denominator)
    return _from_estimates(
        value,
        var,
        control,
        control_var,
        confidence,
        sequential=sequential,
        users=len(numerator) + len(control_numerator),
    )


def _from_estimates(
    value: float,
    var: float,
    control: float,
    control_var: float,
    confidence: float,
    *,
    sequential: Sequential | None = None,
    users: int = 0,
) -> Lift:
    se = math.sqrt(var + control_var)
    if se == 0:
        return Lift(value, control, abs_lift=value - control, reason=ZERO_VARIANCE)
    p_value = float(2 * stats.norm.sf(abs(value - control) / se))
    return _lift(
        value,
        var,
        control,
        control_var,
        quantile=_z(confidence),
        p_value=p_value,
        sequential=sequential,
        users=users,
        alpha=1 - confidence,
    )


def mean_lift(
    *,
    values: Sequence[float],
    control_values: Sequence[float],
    confidence: float = CONFIDENCE,
    sequential: Sequential | None = None,
) -> Lift:
    """Mean per user (one value per user): Welch's t-test and its interval for the difference
    (Welch-Satterthwaite degrees of freedom); the relative interval uses the same t quantile.
    With `sequential`, the (asymptotic, normal) confidence sequence instead."""
    if len(values) == 0 or len(control_values) == 0:
        return Lift(None, None, reason=EMPTY_ARM)
    a = np.asarray(values, dtype=float)
    b = np.asarray(control_values, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return Lift(float(a.mean()), float(b.mean()), reason=ONE_USER)
    mean, control = float(a.mean()), float(b.mean())
    var, control_var = float(a.var(ddof=1)) / len(a), float(b.var(ddof=1)) / len(b)
    if var + control_var == 0:
        return Lift(mean, control, abs_lift=mean - control, reason=ZERO_VARIANCE)
    df = (var + control_var) ** 2 / (var**2 / (len(a) - 1) + control_var**2 / (len(b) - 1))
    t = (mean - control) / math.sqrt(var + control_var)
    p_value = float(2 * stats.t.sf(abs(t), df))
    quantile = float(stats.t.ppf(0.5 + confidence / 2, df))
    return _lift(
        mean,
        var,
        control,
        control_var,
        quantile=quantile,
        p_value=p_value,
        sequential=sequential,
        users=len(a) + len(b),
        alpha=1 - confidence,
    )


def proportion_lift(
    *,
    converted: int,
    exposed: int,
    control_converted: int,
    control_exposed: int,
    confidence: float = CONFIDENCE,
    sequential: Sequential | None = None,
) -> Lift:
    """Users with at least one event: `compare_proportions` (pooled z-test p-value, Wald
    interval) in the `Lift` shape, with the delta-method relative interval. With `sequential`,
    the confidence sequence on the unpooled (Wald) standard error and its p-value."""
    if exposed <= 0 or control_exposed <= 0:
        return Lift(None, None, reason=EMPTY_ARM)
    if exposed < 2 or control_exposed < 2:
        return Lift(converted / exposed, control_converted / control_exposed, reason=ONE_USER)
    base = compare_proportions(
        control_converted=control_converted,
        control_exposed=control_exposed,
        converted=converted,
        exposed=exposed,
    )
    p1, p0 = base.rate, base.control_rate
    if base.p_value is None or (p1 * (1 - p1) == 0 and p0 * (1 - p0) == 0):
        return Lift(p1, p0, abs_lift=base.abs_lift, reason=ZERO_VARIANCE)
    var, control_var = p1 * (1 - p1) / exposed, p0 * (1 - p0) / control_exposed
    return _lift(
        p1,
        var,
        p0,
        control_var,
        quantile=_z(confidence),
        p_value=base.p_value,
        sequential=sequential,
        users=exposed + control_exposed,
        alpha=1 - confidence,
    )


CORRECTIONS = ("holm", "bh")


def adjust_p_values(p_values: Sequence[float | None], method: str = "holm") -> list[float | None]:
    """Family-wise (Holm, step-down Bonferroni) or false-discovery-rate (Benjamini-Hochberg)
    adjusted p-values, in the input order. None entries (no test) are left out of the family
    and stay None."""
    if method not in CORRECTIONS:
        raise ValueError(f"method must be one of {', '.join(CORRECTIONS)}")
    present = [(p, i) for i, p in enumerate(p_values) if p is not None]
    m = len(present)
    adjusted: list[float | None] = [None] * len(p_values)
    ordered = sorted(present)
    if method == "holm":
        running = 0.0
        for rank, (p, i) in enumerate(ordered):
            running = max(running, min(1.0, (m - rank) * p))
            adjusted[i] = running
    else:
        running = 1.0
        for rank in range(m - 1, -1, -1):
            p, i = ordered[rank]
            running = min(running, m * p / (rank + 1))
            adjusted[i] = min(1.0, running)
    return adjusted


# CUPED: controlled-experiment using pre-experiment data (Deng, Xu, Kohavi & Walker,
# "Improving the Sensitivity of Online Controlled Experiments by Utilizing Pre-Experiment
# Data", WSDM 2013). Each user's value of the same metric before their first exposure (X) is
# a covariate independent of the assignment: subtracting theta * (X - mean X) from the metric
# keeps its expectation and divides its variance by 1 / (1 - rho^2) at the best theta.


@dataclass(frozen=True)
class CupedLift:
    """A CUPED-adjusted lift and what the adjustment bought: `variance_reduction` is
    1 - Var(adjusted lift) / Var(plain lift), None without pre-period data (then `lift` is the
    plain lift, exactly)."""

    lift: Lift
    variance_reduction: float | None
    theta: float


def cuped_theta(values: Sequence[float], covariates: Sequence[float]) -> float:
    """theta = cov(Y, X) / var(X) over every user of every variant (one theta for all arms, as
    Deng et al. 2013 and GrowthBook's `compute_theta` pool it); 0 when X (or Y) is constant."""
    y = np.asarray(values, dtype=float)
    x = np.asarray(covariates, dtype=float)
    if len(y) < 2:
        return 0.0
    var_x, var_y = float(x.var(ddof=1)), float(y.var(ddof=1))
    if var_x == 0 or var_y == 0:
        return 0.0
    return float(np.cov(y, x, ddof=1)[0, 1]) / var_x


def _variance_reduction(plain: float, adjusted: float) -> float | None:
    return _finite(1 - adjusted / plain) if plain > 0 else None


def _adjusted(values, covariates, control_values, control_covariates, theta: float | None):
    """Per-user adjusted values y - theta (x - mean x), mean x pooled over both arms."""
    y1, x1 = np.asarray(values, dtype=float), np.asarray(covariates, dtype=float)
    y0, x0 = np.asarray(control_values, dtype=float), np.asarray(control_covariates, dtype=float)
    if len(y1) != len(x1) or len(y0) != len(x0):
        raise ValueError("values and covariates need one entry per user")
    if theta is None:
        theta = cuped_theta(np.concatenate([y1, y0]), np.concatenate([x1, x0]))
    centre = float(np.concatenate([x1, x0]).mean()) if len(x1) + len(x0) else 0.0
    return y1 - theta * (x1 - centre), y0 - theta * (x0 - centre), y1, y0, theta


def cuped_mean_lift(
    *,
    values: Sequence[float],
    covariates: Sequence[float],
    control_values: Sequence[float],
    control_covariates: Sequence[float],
    confidence: float = CONFIDENCE,
    theta: float | None = None,
    sequential: Sequential | None = None,
) -> CupedLift:
    """Mean per user with CUPED: `mean_lift` (Welch) on the adjusted values
    y - theta (x - mean x), so the adjusted mean is ybar - theta (xbar - pooled xbar) and its
    variance Var(y - theta x) / n. `theta` defaults to `cuped_theta` over both arms. Without
    pre-period variance (theta 0) this is `mean_lift` on the plain values, exactly."""
    adjusted, control_adjusted, y1, y0, theta = _adjusted(
        values, covariates, control_values, control_covariates, theta
    )
    if theta == 0:
        lift = mean_lift(
            values=values,
            control_values=control_values,
            confidence=confidence,
            sequential=sequential,
        )
        return CupedLift(lift, None, 0.0)
    lift = mean_lift(
        values=adjusted,
        control_values=control_adjusted,
        confidence=confidence,
        sequential=sequential,
    )
    if len(y1) < 2 or len(y0) < 2:
        return CupedLift(lift, None, theta)
    plain = y1.var(ddof=1) / len(y1) + y0.var(ddof=1) / len(y0)
    reduced = adjusted.var(ddof=1) / len(y1) + control_adjusted.var(ddof=1) / len(y0)
    return CupedLift(lift, _variance_reduction(float(plain), float(reduced)), theta)


def cuped_proportion_lift(
    *,
    converted: Sequence[bool],
    covariates: Sequence[float],
    control_converted: Sequence[bool],
    control_covariates: Sequence[float],
    confidence: float = CONFIDENCE,
    theta: float | None = None,
    sequential: Sequential | None = None,
) -> CupedLift:
    """Users with at least one event, with CUPED on each user's 0/1 (the covariate: had one in
    the pre-period). The adjusted share and its variance are as `cuped_mean_lift`'s with the
    binomial variance p(1 - p) / n (moments with n, not n - 1), tested with the z-test on the
    unpooled standard error. Without pre-period variance: `proportion_lift`, exactly."""
    y1 = np.asarray(converted, dtype=float)
    y0 = np.asarray(control_converted, dtype=float)
    adjusted, control_adjusted, y1, y0, theta = _adjusted(
        y1, covariates, y0, control_covariates, theta
    )
    if theta == 0 or len(y1) < 2 or len(y0) < 2:
        lift = proportion_lift(
            converted=int(y1.sum()),
            exposed=len(y1),
            control_converted=int(y0.sum()),
            control_exposed=len(y0),
            confidence=confidence,
            sequential=sequential,
        )
        return CupedLift(lift, None, 0.0)
    var, control_var = adjusted.var() / len(y1), control_adjusted.var() / len(y0)
    lift = _from_estimates(
        float(adjusted.mean()),
        float(var),
        float(control_adjusted.mean()),
        float(control_var),
        confidence,
        sequential=sequential,
        users=len(y1) + len(y0),
    )
    plain = y1.var() / len(y1) + y0.var() / len(y0)
    return CupedLift(lift, _variance_reduction(float(plain), float(var + control_var)), theta)


def _linearised(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Each user's influence on sum(x) / sum(y): (x_i - R y_i) / mean(y), mean exactly 0; its
    sample variance / n is `ratio_estimate`'s delta-method variance."""
    ratio = numerator.sum() / denominator.sum()
    return (numerator - ratio * denominator) / denominator.mean()


def cuped_ratio_lift(
    *,
    numerator: Sequence[float],
    denominator: Sequence[float],
    pre_numerator: Sequence[float],
    pre_denominator: Sequence[float],
    control_numerator: Sequence[float],
    control_denominator: Sequence[float],
    control_pre_numerator: Sequence[float],
    control_pre_denominator: Sequence[float],
    confidence: float = CONFIDENCE,
    sequential: Sequential | None = None,
) -> CupedLift:
    """Ratio metric with CUPED through the delta method (regression adjustment of the
    linearised ratio, as GrowthBook's `RegressionAdjustedRatioStatistic` and Statsig's CUPED for
    ratio metrics): per arm R - theta (R_pre - pooled R_pre), with R_pre the same ratio over
    the pre-period numerator and denominator. With u_i, v_i the users' linearised post and pre
    ratios, Var = Var(u - theta v) / n and theta = sum over arms of cov(u, v) / sum of var(v)
    (GrowthBook's `compute_theta_regression_adjusted_ratio`). Without pre-period data (no
    pre-period denominator in an arm, or no variance) this is `ratio_lift`, exactly."""
    plain = ratio_lift(
        numerator=numerator,
        denominator=denominator,
        control_numerator=control_numerator,
        control_denominator=control_denominator,
        confidence=confidence,
        sequential=sequential,
    )
    arms = [
        [np.asarray(a, dtype=float) for a in arm]
        for arm in (
            (numerator, denominator, pre_numerator, pre_denominator),
            (
                control_numerator,
                control_denominator,
                control_pre_numerator,
                control_pre_denominator,
            ),
        )
    ]
    if any(len({len(a) for a in arm}) != 1 for arm in arms):
        raise ValueError("numerators and denominators need one entry per user")
    if plain.reason is not None and plain.reason != ZERO_CONTROL:
        return CupedLift(plain, None, 0.0)
    if any(arm[3].sum() <= 0 for arm in arms):
        return CupedLift(plain, None, 0.0)
    moments = []
    for y, d, x, e in arms:
        u, v = _linearised(y, d), _linearised(x, e)
        moments.append((float(np.cov(u, v, ddof=1)[0, 1]), float(v.var(ddof=1)), len(u)))
    pre_var = sum(var_v for _, var_v, _ in moments)
    if pre_var == 0:
        return CupedLift(plain, None, 0.0)
    theta = sum(cov for cov, _, _ in moments) / pre_var
    pooled_pre = sum(arm[2].sum() for arm in arms) / sum(arm[3].sum() for arm in arms)
    estimates = []
    for (y, d, x, e), (cov, var_v, n) in zip(arms, moments, strict=True):
        _, var_plain = ratio_estimate(y, d)
        value = y.sum() / d.sum() - theta * (x.sum() / e.sum() - pooled_pre)
        var = max(var_plain + (theta**2 * var_v - 2 * theta * cov) / n, 0.0)
        estimates.append((float(value), float(var), var_plain))
    (value, var, var_plain1), (control, control_var, var_plain0) = estimates
    lift = _from_estimates(
        value,
        var,
        control,
        control_var,
        confidence,
        sequential=sequential,
        users=len(numerator) + len(control_numerator),
    )
    reduction = _variance_reduction(var_plain1 + var_plain0, var + control_var)
    return CupedLift(lift, reduction, theta)
