"""Experiment statistics: pure functions over counts, with scipy's distributions.

- Versus control, per variant and outcome type: absolute and relative lift, the 95% Wald
  confidence interval of the difference (unpooled standard error), and the two-sided p-value
  of the pooled two-proportion z-test. These equal statsmodels' `proportions_ztest` and
  `confint_proportions_2indep(method="wald")` (the tests compare them).
- Sample ratio mismatch: chi-squared test of exposed users per variant against the weights.

Where the data cannot answer (no exposed users, a rate of 0 or 1 on both sides) the result
says so with `None` values and a reason, never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from scipy import stats

CONFIDENCE = 0.95
SRM_ALPHA = 0.001


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
