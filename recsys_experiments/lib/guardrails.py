"""Guardrails: limits an experiment declares, evaluated by its results report.

    {"metric": "like_rate", "max_drop": 0.02}        a variant's like rate may not fall more
                                                     than 2 points below control's
    {"metric": "dislike_rate", "max_rise": 0.03}     ... may not rise more than 3 points
    {"metric": "untagged_impressions", "max_share": 0.01}   telemetry over the window
    {"metric": "orphan_outcomes", "max_share": 0.05}

Rates are the report's per-user conversion rates (`<outcome type>_rate`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

OUTCOME_TYPES = ("like", "dislike", "watchlist", "rating", "detail_open")
RATE_METRICS = {f"{kind}_rate": kind for kind in OUTCOME_TYPES}
SHARE_METRICS = {
    "untagged_impressions": "impressions_missing_experiments_share",
    "orphan_outcomes": "outcomes_without_impression_share",
}


def _is_limit(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def check_guardrail(guardrail: Any) -> Iterator[tuple[str, str]]:
    if not isinstance(guardrail, dict):
        yield "", 'must be an object such as {"metric": "like_rate", "max_drop": 0.02}'
        return
    metric = guardrail.get("metric")
    if not isinstance(metric, str):  # a list or object is not even hashable
        metric = None
    if metric in RATE_METRICS:
        limits = {"max_drop", "max_rise"}
    elif metric in SHARE_METRICS:
        limits = {"max_share"}
    else:
        known = ", ".join([*RATE_METRICS, *SHARE_METRICS])
        yield "metric", f"must be one of {known}"
        return
    given = set(guardrail) - {"metric"}
    if len(given) != 1 or not given <= limits:
        yield "", f"needs exactly one of {', '.join(sorted(limits))}"
        return
    [limit] = given
    if not _is_limit(guardrail[limit]):
        yield limit, "must be a number from 0 to 1"


def evaluate(guardrails: list[dict], *, control: str, variants: list[dict], health: dict) -> list:
    """One result per guardrail and (for rates) per non-control variant."""
    by_name = {variant["variant"]: variant for variant in variants}
    results = []
    for guardrail in guardrails:
        metric = guardrail["metric"]
        if metric in SHARE_METRICS:
            value = health[SHARE_METRICS[metric]]
            limit = guardrail["max_share"]
            results.append({**guardrail, "variant": None, "value": value, "passed": value <= limit})
            continue
        kind = RATE_METRICS[metric]
        base = by_name[control]["outcomes"][kind]["rate"]
        for name, variant in by_name.items():
            if name == control:
                continue
            rate = variant["outcomes"][kind]["rate"]
            if base is None or rate is None:
                results.append({**guardrail, "variant": name, "value": None, "passed": True})
                continue
            change = rate - base
            passed = (
                -change <= guardrail["max_drop"]
                if "max_drop" in guardrail
                else change <= guardrail["max_rise"]
            )
            results.append({**guardrail, "variant": name, "value": change, "passed": passed})
    return results
