"""Power and duration: fixed-horizon sample sizes, minimum detectable effects and days
(docs/recsys-experiments.md, "Power and duration"). Pure functions over numbers.

The test is the two-sided z-test of a difference of two independent means (or proportions)
at level alpha. With the difference delta and its standard error se, its power is

    power = Phi(delta / se - z) + Phi(-delta / se - z),   z = Phi^-1(1 - alpha / 2)

(both tails, as statsmodels' `NormalIndPower`). The multiplier m solves power(m) = target
(m ~ z + Phi^-1(power) = 2.80 for 80% at 0.05), so:

- minimum detectable effect at a standard error se: MDE = m * se;
- users per variant for a difference delta with per-user variances s0^2 (control) and s1^2:
  n = m^2 (s0^2 + s1^2) / delta^2 (equal arms), the same as `NormalIndPower().solve_power`
  with effect size delta / sqrt((s0^2 + s1^2) / 2) and ratio 1;
- for a conversion rate p0 with p1 = p0 + delta: s0^2 = p0(1 - p0), s1^2 = p1(1 - p1).

These are fixed-horizon numbers: an experiment read with always-valid (sequential)
intervals needs somewhat more users for the same power.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy import optimize, stats

from .errors import InvalidInput

ALPHA = 0.05
POWER = 0.8
MAX_VARIANTS = 20
MAX_DAILY_USERS = 10**9


def power_at(standardised: float, alpha: float = ALPHA) -> float:
    """Power of the two-sided z-test when the true difference is `standardised` standard
    errors."""
    z = stats.norm.isf(alpha / 2)
    return float(stats.norm.sf(z - standardised) + stats.norm.cdf(-z - standardised))


def mde_multiplier(alpha: float = ALPHA, power: float = POWER) -> float:
    """m with power_at(m) = power: the MDE in standard errors."""
    if not (0 < alpha < 1 and alpha / 2 < power < 1):
        raise ValueError("alpha must be in (0, 1) and power in (alpha/2, 1)")
    upper = stats.norm.isf(alpha / 2) + stats.norm.ppf(power) + 1
    return float(
        optimize.brentq(lambda m: power_at(m, alpha) - power, 0.0, upper, xtol=1e-14, rtol=1e-15)
    )


def users_per_variant(
    delta: float, var_control: float, var_treatment: float, *, alpha=ALPHA, power=POWER
) -> float:
    """Users per variant (not rounded) for a difference `delta` between two equal arms with
    these per-user variances."""
    if delta == 0:
        return math.inf
    return mde_multiplier(alpha, power) ** 2 * (var_control + var_treatment) / delta**2


def proportion_users_per_variant(
    baseline: float, delta: float, *, alpha=ALPHA, power=POWER
) -> float:
    """Users per variant to detect a conversion rate baseline + delta against baseline."""
    treated = baseline + delta
    return users_per_variant(
        delta, baseline * (1 - baseline), treated * (1 - treated), alpha=alpha, power=power
    )


def proportion_mde(baseline: float, users: float, *, alpha=ALPHA, power=POWER) -> float:
    """The smallest rise delta > 0 of a conversion rate `baseline` that `users` per variant
    detect: the inverse of proportion_users_per_variant (root find, 1 - baseline at most)."""
    if users <= 0:
        return math.inf
    top = 1 - baseline

    def gap(delta: float) -> float:
        return proportion_users_per_variant(baseline, delta, alpha=alpha, power=power) - users

    if gap(top) > 0:
        return math.inf
    return float(optimize.brentq(gap, top * 1e-12, top, xtol=1e-15, rtol=1e-14))


@dataclass(frozen=True)
class Duration:
    """Power of one comparison at the current sample and the days to reach a target MDE."""

    variant: str
    mde_abs: float | None
    mde_rel: float | None
    target_mde_abs: float | None
    users_needed: int | None
    days_needed: float | None
    days_remaining: float | None
    reason: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def duration(
    *,
    variant: str,
    std_error: float | None,
    control_value: float | None,
    users: int,
    elapsed_days: float,
    target_mde_rel: float,
    alpha: float = ALPHA,
    power: float = POWER,
) -> Duration:
    """From a comparison's standard error on `users` users (all arms) after `elapsed_days`:
    the MDE now (m * se, relative to |control_value|) and, with se^2 falling as 1/users at
    the observed daily arrivals users / elapsed_days, the users and days (from the start)
    needed for an MDE of target_mde_rel * |control_value|, and the days still to go."""
    if std_error is None or std_error <= 0 or users <= 0:
        return Duration(variant, None, None, None, None, None, None, "no standard error yet")
    m = mde_multiplier(alpha, power)
    mde_abs = m * std_error
    baseline = abs(control_value) if control_value else 0.0
    if baseline == 0:
        return Duration(
            variant, mde_abs, None, None, None, None, None, "control value is zero: no relative MDE"
        )
    target = target_mde_rel * baseline
    needed = users * (mde_abs / target) ** 2
    users_needed = math.ceil(needed - 1e-9)
    if elapsed_days <= 0:
        return Duration(
            variant, mde_abs, mde_abs / baseline, target, users_needed, None, None, "no arrivals"
        )
    per_day = users / elapsed_days
    days_needed = needed / per_day
    return Duration(
        variant=variant,
        mde_abs=mde_abs,
        mde_rel=mde_abs / baseline,
        target_mde_abs=target,
        users_needed=users_needed,
        days_needed=days_needed,
        days_remaining=max(0.0, days_needed - elapsed_days),
    )


# The admin calculator -----------------------------------------------------------------------

CALCULATOR_FIELDS = ("baseline", "mde", "mde_type", "variants", "daily_users")
MDE_TYPES = ("relative", "absolute")


def number_from(value: Any) -> float | None:
    """A finite number from a form or JSON value, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value) if abs(value) < 1e300 else math.inf
    elif isinstance(value, str) and 0 < len(value) <= 40 and value.isascii():
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and 0 < len(value) <= 12 and value.isascii():
        text = value.strip()
        if text.isdigit():
            return int(text)
    return None


def clean_calculator(data: Any) -> dict:
    """The calculator's inputs, checked; InvalidInput names every bad field."""
    if not isinstance(data, dict):
        raise InvalidInput({"body": ["must be an object"]})
    errors: dict[str, list[str]] = {}
    baseline = number_from(data.get("baseline"))
    if baseline is None or not 0 < baseline < 1:
        errors["baseline"] = ["must be a conversion rate between 0 and 1 (exclusive), e.g. 0.12"]
    mde_type = data.get("mde_type") or "relative"
    if mde_type not in MDE_TYPES:
        errors["mde_type"] = ["must be relative or absolute"]
    mde = number_from(data.get("mde"))
    if mde is None or mde <= 0:
        errors["mde"] = ["must be a number greater than 0, e.g. 0.05"]
    variants = _whole(data.get("variants"))
    if variants is None or not 2 <= variants <= MAX_VARIANTS:
        errors["variants"] = [f"must be a whole number from 2 to {MAX_VARIANTS}, control included"]
    daily = _whole(data.get("daily_users"))
    if daily is None or not 1 <= daily <= MAX_DAILY_USERS:
        errors["daily_users"] = [f"must be a whole number from 1 to {MAX_DAILY_USERS:,}"]
    if not errors:
        delta = baseline * mde if mde_type == "relative" else mde
        if not 0 < baseline + delta < 1:
            errors["mde"] = [
                f"baseline + effect ({baseline + delta:.4g}) must stay below 1: a smaller MDE"
            ]
    if errors:
        raise InvalidInput(errors)
    return {
        "baseline": baseline,
        "mde": mde,
        "mde_type": mde_type,
        "variants": variants,
        "daily_users": daily,
    }


def calculator(data: Any) -> dict:
    """Users per variant and days for a conversion rate `baseline` to show a rise of `mde`
    (relative to the baseline, or absolute) at 80% power, alpha 0.05 two-sided, each
    non-control variant against control, with `daily_users` split equally over `variants`."""
    cleaned = clean_calculator(data)
    baseline = cleaned["baseline"]
    delta = baseline * cleaned["mde"] if cleaned["mde_type"] == "relative" else cleaned["mde"]
    per_variant = math.ceil(proportion_users_per_variant(baseline, delta) - 1e-9)
    total = per_variant * cleaned["variants"]
    return {
        **cleaned,
        "alpha": ALPHA,
        "power": POWER,
        "treatment_rate": baseline + delta,
        "absolute_effect": delta,
        "relative_effect": delta / baseline,
        "users_per_variant": per_variant,
        "total_users": total,
        "days": math.ceil(total / cleaned["daily_users"]),
    }
