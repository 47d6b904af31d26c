"""Catalogue metrics for an experiment: per-user counts from one SQL query, then the lifts of
recsys_experiments/lib/statistics.py per metric and variant, with adjusted p-values
(definitions in docs/recsys-experiments.md, "Metrics and inference").

- The window is `(start, end)`: impressions with `start <= created_at < end` (end None: now).
- The population is `{variant: user ids}`: a user counts in a variant only through impressions
  tagged with that variant (the caller has already dropped forced, multi-variant and
  before-phase users); None counts every user with a tagged impression.
- A user is in a variant's rows when they have at least one such impression. An outcome counts
  when it is joined to one of them on (user_id, rec_request_id, media_item_id), whenever it
  occurred; a repeated impression of the same item in the same request counts its outcomes once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.utils import timezone

from recsys_experiments.lib.constants import IMPRESSION, MEAN, OUTCOME_TYPES, PROPORTION, RATIO
from recsys_experiments.lib.statistics import (
    CORRECTIONS,
    Lift,
    Sequential,
    adjust_p_values,
    mean_lift,
    proportion_lift,
    ratio_lift,
)
from recsys_experiments.models import Experiment
from telemetry.models import Metric

# Column names come from lib/constants.OUTCOME_TYPES (never from input).
_OUTCOME_COUNTS = ",\n               ".join(
    f"count(*) filter (where o.outcome_type = '{kind}') as {kind}_events, "
    f"coalesce(sum(o.value) filter (where o.outcome_type = '{kind}'), 0) as {kind}_sum"
    for kind in OUTCOME_TYPES
)
_OUTCOME_TOTALS = ",\n       ".join(
    f"coalesce(sum(o.{kind}_events), 0), coalesce(sum(o.{kind}_sum), 0)" for kind in OUTCOME_TYPES
)

# One row per user and variant. Each served (request, item) is looked up in rec_outcomes by
# its index, once however often it was served: no join between two aggregates, whose sizes
# the planner cannot estimate (it once chose a nested loop over thousands of users).
# The only interpolation: the outcome columns, built from the constants above.
PER_USER_COUNTS = f"""
with served as (
    select i.user_id, i.rec_request_id, i.media_item_id,
           i.request_context -> 'experiments' ->> %(key)s as variant, count(*) as impressions
    from rec_impressions as i
    where i.created_at >= %(start)s and i.created_at < %(end)s
      and i.request_context -> 'experiments' ? %(key)s
    group by 1, 2, 3, 4
)
select s.user_id, s.variant, sum(s.impressions),
       {_OUTCOME_TOTALS}
from served as s
left join lateral (
    select {_OUTCOME_COUNTS}
    from rec_outcomes as o
    where o.rec_request_id = s.rec_request_id and o.media_item_id = s.media_item_id
      and o.user_id = s.user_id
) as o on true
group by s.user_id, s.variant
order by s.variant, s.user_id
"""  # noqa: S608


@dataclass(frozen=True)
class UserCounts:
    """One user's events in one variant: impressions, and per outcome type the number of
    outcomes and the sum of their values."""

    user_id: str
    variant: str
    impressions: int
    events: dict[str, int] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)

    def count(self, event: str) -> int:
        return self.impressions if event == IMPRESSION else self.events.get(event, 0)


def _window(window) -> tuple[datetime, datetime]:
    start, end = window
    return start, end if end is not None else timezone.now()


def per_user_counts(
    experiment_key: str,
    *,
    population: Mapping[str, Collection] | None,
    window: tuple[datetime, datetime | None],
) -> list[UserCounts]:
    """Per user and variant of the experiment: impressions in the window and, per outcome type,
    the outcomes joined to them (count and value sum). One query."""
    start, end = _window(window)
    with connection.cursor() as cursor:
        cursor.execute(PER_USER_COUNTS, {"key": experiment_key, "start": start, "end": end})
        rows = cursor.fetchall()
    # The population is applied here, not in SQL: a user-id array joined in the query is
    # estimated at a handful of rows and planned as a nested loop over every impression.
    members = (
        None
        if population is None
        else {(str(user_id), variant) for variant, ids in population.items() for user_id in ids}
    )
    counts = []
    for user_id, variant, impressions, *per_type in rows:
        if members is not None and (str(user_id), variant) not in members:
            continue
        events = {kind: int(per_type[2 * n] or 0) for n, kind in enumerate(OUTCOME_TYPES)}
        sums = {kind: float(per_type[2 * n + 1] or 0) for n, kind in enumerate(OUTCOME_TYPES)}
        counts.append(UserCounts(str(user_id), variant, int(impressions), events, sums))
    return counts


def metric_lift(
    metric: Metric,
    users: Sequence[UserCounts],
    control: Sequence[UserCounts],
    sequential: Sequential | None = None,
) -> Lift:
    """The metric's lift of one variant's users against control's users (always-valid
    intervals and p-value with `sequential`, fixed-horizon ones without)."""
    if metric.kind == RATIO:
        return ratio_lift(
            numerator=[u.count(metric.numerator) for u in users],
            denominator=[u.count(metric.denominator) for u in users],
            control_numerator=[u.count(metric.numerator) for u in control],
            control_denominator=[u.count(metric.denominator) for u in control],
            sequential=sequential,
        )
    if metric.kind == MEAN:
        return mean_lift(
            values=per_user_values(metric, users),
            control_values=per_user_values(metric, control),
            sequential=sequential,
        )
    if metric.kind == PROPORTION:
        return proportion_lift(
            converted=sum(u.count(metric.numerator) > 0 for u in users),
            exposed=len(users),
            control_converted=sum(u.count(metric.numerator) > 0 for u in control),
            control_exposed=len(control),
            sequential=sequential,
        )
    raise ValueError(f"unknown metric kind {metric.kind!r}")


def per_user_values(metric: Metric, users: Sequence[UserCounts]) -> list[float]:
    """A mean metric's value per user: the count of events, the sum of their values, or (for
    `mean`) the mean of their values over users with at least one."""
    if metric.value == "count":
        return [float(u.count(metric.numerator)) for u in users]
    if metric.value == "sum":
        return [u.sums.get(metric.numerator, 0.0) for u in users]
    return [
        u.sums[metric.numerator] / u.events[metric.numerator]
        for u in users
        if u.events.get(metric.numerator, 0) > 0
    ]


def metric_rows(
    experiment: Experiment,
    population: Mapping[str, Collection] | None,
    window: tuple[datetime, datetime | None],
    metrics: Iterable[Metric],
    control: str,
    correction: str = "holm",
    sequential: Sequential | None = None,
) -> list[dict]:
    """One row per metric and non-control variant: {metric, kind, variant, control_value,
    value, abs_lift, abs_ci_low, abs_ci_high, rel_lift, rel_ci_low, rel_ci_high, p_value,
    p_adjusted, sequential, std_error, reason?}. `p_value` is always the raw p-value (what
    the primary metric is judged on); `p_adjusted` corrects across all rows (metrics x
    variants) by Holm (default) or Benjamini-Hochberg ("bh"); a row with no test has neither.
    With `sequential` the intervals and p-values are always-valid (`sequential: true`) and the
    correction applies to those p-values; `std_error` is the absolute lift's standard error."""
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}")
    if control not in experiment.variant_names:
        raise ValueError(f"control {control!r} is not a variant of {experiment.key}")
    by_variant: dict[str, list[UserCounts]] = {name: [] for name in experiment.variant_names}
    for counts in per_user_counts(experiment.key, population=population, window=window):
        by_variant.setdefault(counts.variant, []).append(counts)
    rows = []
    for metric in metrics:
        for variant in experiment.variant_names:
            if variant == control:
                continue
            lift = metric_lift(metric, by_variant[variant], by_variant[control], sequential)
            row = {"metric": metric.key, "kind": metric.kind, "variant": variant, **lift.as_dict()}
            rows.append(row)
    adjusted = adjust_p_values([row["p_value"] for row in rows], correction)
    ordered = []
    for row, p_adjusted in zip(rows, adjusted, strict=True):
        reason = row.pop("reason")
        ordered.append(
            {
                "metric": row["metric"],
                "kind": row["kind"],
                "variant": row["variant"],
                "control_value": row["control_value"],
                "value": row["value"],
                "abs_lift": row["abs_lift"],
                "abs_ci_low": row["abs_ci_low"],
                "abs_ci_high": row["abs_ci_high"],
                "rel_lift": row["rel_lift"],
                "rel_ci_low": row["rel_ci_low"],
                "rel_ci_high": row["rel_ci_high"],
                "p_value": row["p_value"],
                "p_adjusted": p_adjusted,
                "sequential": sequential is not None,
                "std_error": row["std_error"],
                **({"reason": reason} if reason else {}),
            }
        )
    return ordered


def experiment_metrics(experiment: Experiment) -> list[Metric]:
    """The experiment's metrics, primary first; the whole catalogue when it names none."""
    linked = [link.metric for link in experiment.experiment_metrics.select_related("metric")]
    return linked or list(Metric.objects.all())


def primary_metric(experiment: Experiment) -> Metric | None:
    link = experiment.experiment_metrics.filter(is_primary=True).select_related("metric").first()
    return link.metric if link else None
