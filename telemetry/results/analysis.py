"""Experiment results from the raw impressions and outcomes (definitions in
docs/recsys-experiments.md, "How results are computed").

For a window of the last `days` UTC days: a variant's exposed users have at least one
impression tagged with it; a user converts on outcome type T with at least one T outcome on
such an impression. Control is the variant named "control", else the first.
"""

from __future__ import annotations

from django.db import connection

from recsys_experiments.lib.guardrails import OUTCOME_TYPES, evaluate
from recsys_experiments.lib.statistics import compare_proportions, sample_ratio_mismatch
from recsys_experiments.models import Experiment
from telemetry.selectors import telemetry_health

VARIANT_COUNTS = """
with tagged as (
    select i.user_id, i.rec_request_id, i.media_item_id,
           i.request_context -> 'experiments' ->> %(key)s as variant
    from rec_impressions as i
    where (i.created_at at time zone 'UTC')::date >= current_date - %(back)s
      and i.request_context -> 'experiments' ? %(key)s
      and (%(users)s::uuid[] is null or i.user_id = any(%(users)s::uuid[]))
)
select t.variant, null::text as outcome_type, count(*) as impressions,
       count(distinct t.user_id) as users, null::float8 as mean_rating
from tagged as t
group by t.variant
union all
select t.variant, o.outcome_type, null, count(distinct t.user_id),
       avg(o.value) filter (where o.outcome_type = 'rating')
from tagged as t
join rec_outcomes as o
  on o.user_id = t.user_id and o.rec_request_id = t.rec_request_id
 and o.media_item_id = t.media_item_id
group by t.variant, o.outcome_type
"""


def control_of(experiment: Experiment) -> str:
    names = experiment.variant_names
    return "control" if "control" in names else names[0]


def variant_metrics(experiment: Experiment, *, days: int, user_ids=None) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(
            VARIANT_COUNTS,
            {
                "key": experiment.key,
                "back": days - 1,
                "users": [str(u) for u in user_ids] if user_ids is not None else None,
            },
        )
        rows = cursor.fetchall()
    exposure = {v: (imp, users) for v, kind, imp, users, _ in rows if kind is None}
    converted = {(v, kind): users for v, kind, _, users, _ in rows if kind is not None}
    ratings = {v: mean for v, kind, _, _, mean in rows if kind == "rating"}
    metrics = []
    for name in experiment.variant_names:
        impressions, exposed = exposure.get(name, (0, 0))
        metrics.append(
            {
                "variant": name,
                "exposed_users": exposed,
                "impressions": impressions,
                "outcomes": {
                    kind: {
                        "converted_users": converted.get((name, kind), 0),
                        "rate": converted.get((name, kind), 0) / exposed if exposed else None,
                    }
                    for kind in OUTCOME_TYPES
                },
                "mean_rating": ratings.get(name),
            }
        )
    return metrics


def experiment_results(experiment: Experiment, *, days: int = 7, user_ids=None) -> dict:
    """Per-variant metrics, comparisons with control, sample ratio mismatch and guardrails."""
    variants = variant_metrics(experiment, days=days, user_ids=user_ids)
    control = control_of(experiment)
    by_name = {variant["variant"]: variant for variant in variants}
    comparisons = []
    for variant in variants:
        if variant["variant"] == control:
            continue
        for kind in OUTCOME_TYPES:
            result = compare_proportions(
                control_converted=by_name[control]["outcomes"][kind]["converted_users"],
                control_exposed=by_name[control]["exposed_users"],
                converted=variant["outcomes"][kind]["converted_users"],
                exposed=variant["exposed_users"],
            )
            comparisons.append(
                {"variant": variant["variant"], "outcome_type": kind, **result.as_dict()}
            )
    srm = sample_ratio_mismatch(
        [variant["exposed_users"] for variant in variants],
        [variant["weight"] for variant in experiment.variants],
    )
    guardrails = evaluate(
        experiment.guardrails,
        control=control,
        variants=variants,
        health=telemetry_health(days=days) if experiment.guardrails else {},
    )
    return {
        "experiment": experiment.key,
        "days": days,
        "control": control,
        "srm": srm,
        "variants": variants,
        "comparisons": comparisons,
        "guardrails": guardrails,
        "guardrails_passed": all(result["passed"] for result in guardrails),
    }
