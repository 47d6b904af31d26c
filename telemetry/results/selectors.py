"""Reads for the results pages."""

from __future__ import annotations

from django.db import connection

from recsys_experiments.models import Experiment


def experiment_daily_series(experiment: Experiment, *, days: int) -> dict:
    """The last `days` UTC days of rec_variant_daily_metrics_v1 for one experiment, one value
    per day and variant (None where the variant had no impressions that day)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            select d::date as day, v.variant, m.impressions, m.like_rate
            from generate_series(current_date - %(back)s, current_date, interval '1 day') as d
            cross join unnest(%(variants)s::text[]) as v(variant)
            left join rec_variant_daily_metrics_v1 as m
                   on m.day = d::date and m.experiment_key = %(key)s and m.variant = v.variant
                  and m.day >= current_date - %(back)s
            order by 1, 2
            """,
            {"back": days - 1, "variants": experiment.variant_names, "key": experiment.key},
        )
        rows = cursor.fetchall()
    labels = sorted({day.isoformat() for day, *_ in rows})
    by_variant = {name: {} for name in experiment.variant_names}
    for day, variant, impressions, like_rate in rows:
        by_variant[variant][day.isoformat()] = (impressions, like_rate)
    return {
        "days": days,
        "labels": labels,
        "impressions": {
            name: [points.get(label, (0, None))[0] or 0 for label in labels]
            for name, points in by_variant.items()
        },
        "like_rate": {
            name: [points.get(label, (None, None))[1] for label in labels]
            for name, points in by_variant.items()
        },
    }
