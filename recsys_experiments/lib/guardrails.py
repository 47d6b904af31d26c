"""Guardrails: limits an experiment declares, evaluated by its results report.

    {"metric": "like_rate", "max_drop": 0.02}        a variant's like rate may not fall more
                                                     than 0.02 below control's
    {"metric": "dislike_rate", "max_rise": 0.03}     ... may not rise more than 0.03
    {"metric": "untagged_impressions", "max_share": 0.01}   telemetry over the window
    {"metric": "orphan_outcomes", "max_share": 0.05}

A drop/rise guardrail names a catalogue metric (lib/constants.CATALOGUE_METRICS, the keys of
rec_metrics) and is judged per non-control variant on the 95% confidence interval of the
metric's absolute lift (variant - control, in the metric's units), from the results' metric
rows:

- `max_drop d` FAILS when the whole interval lies below -d (abs_ci_high < -d);
- `max_rise r` FAILS when the whole interval lies above r (abs_ci_low > r);
- otherwise it PASSES when there is an interval, and is NOT ENOUGH DATA when there is none
  (no users, no variance: the row's reason says why). Only "passed" counts as passed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from .constants import CATALOGUE_METRICS, OUTCOME_TYPES

__all__ = ["FAILED", "NOT_ENOUGH_DATA", "OUTCOME_TYPES", "PASSED", "check_guardrail", "evaluate"]

PASSED, FAILED, NOT_ENOUGH_DATA = "passed", "failed", "not enough data"
STATUSES = (PASSED, FAILED, NOT_ENOUGH_DATA)
LIFT_LIMITS = ("max_drop", "max_rise")
SHARE_METRICS = {
    "untagged_impressions": "impressions_missing_experiments_share",
    "orphan_outcomes": "outcomes_without_impression_share",
}


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def check_guardrail(guardrail: Any) -> Iterator[tuple[str, str]]:
    if not isinstance(guardrail, dict):
        yield "", 'must be an object such as {"metric": "like_rate", "max_drop": 0.02}'
        return
    metric = guardrail.get("metric")
    if not isinstance(metric, str):  # a list or object is not even hashable
        metric = None
    if metric in CATALOGUE_METRICS:
        limits = set(LIFT_LIMITS)
    elif metric in SHARE_METRICS:
        limits = {"max_share"}
    else:
        known = ", ".join([*CATALOGUE_METRICS, *SHARE_METRICS])
        yield "metric", f"must be one of {known}"
        return
    given = set(guardrail) - {"metric"}
    if len(given) != 1 or not given <= limits:
        yield "", f"needs exactly one of {', '.join(sorted(limits))}"
        return
    [limit] = given
    value = guardrail[limit]
    if limit == "max_share":
        if not (_is_number(value) and value <= 1):
            yield limit, "must be a number from 0 to 1"
    elif not _is_number(value):
        yield limit, "must be a number from 0 (absolute, in the metric's units)"


def _lift_status(guardrail: dict, low, high) -> str:
    if low is None or high is None:
        return NOT_ENOUGH_DATA
    if "max_drop" in guardrail:
        return FAILED if high < -guardrail["max_drop"] else PASSED
    return FAILED if low > guardrail["max_rise"] else PASSED


def evaluate(
    guardrails: list[dict], *, control: str, variant_names: list[str], rows: list[dict], health
) -> list[dict]:
    """One result per guardrail and (for catalogue metrics) per non-control variant:
    {metric, max_*, variant, value, ci_low, ci_high, status, passed, reason?}. `rows` are the
    metric rows (telemetry/results/metrics.metric_rows) holding every guardrail's metric."""
    by_key = {(row["metric"], row["variant"]): row for row in rows}
    results = []
    for guardrail in guardrails:
        metric = guardrail["metric"]
        if metric in SHARE_METRICS:
            value = health.get(SHARE_METRICS[metric])
            if value is None:
                status = NOT_ENOUGH_DATA
            else:
                status = PASSED if value <= guardrail["max_share"] else FAILED
            results.append(
                {
                    **guardrail,
                    "variant": None,
                    "value": value,
                    "ci_low": None,
                    "ci_high": None,
                    "status": status,
                    "passed": status == PASSED,
                }
            )
            continue
        for name in variant_names:
            if name == control:
                continue
            row = by_key.get((metric, name))
            low, high = (row["abs_ci_low"], row["abs_ci_high"]) if row else (None, None)
            status = _lift_status(guardrail, low, high)
            result = {
                **guardrail,
                "variant": name,
                "value": row["abs_lift"] if row else None,
                "ci_low": low,
                "ci_high": high,
                "status": status,
                "passed": status == PASSED,
            }
            if status == NOT_ENOUGH_DATA:
                result["reason"] = (
                    (row.get("reason") or "no confidence interval")
                    if row
                    else "no data in the window"
                )
            results.append(result)
    return results
