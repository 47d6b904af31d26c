"""Reads for the results pages."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from recsys_experiments.db import reading_cursor
from recsys_experiments.lib.errors import InvalidInput
from recsys_experiments.models import Experiment


def experiment_daily_series(experiment: Experiment, *, days: int) -> dict:
    """The last `days` UTC days of rec_variant_daily_metrics_v1 for one experiment, one value
    per day and variant (None where the variant had no impressions that day)."""
    with reading_cursor() as cursor:
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


# ?view= of the results page and the metrics API -> (SQL view, its category column). Each
# view is rec_<name>_daily_metrics_v1 split by experiment and variant (telemetry/sql/
# variant_breakdowns.v1.sql).
BREAKDOWN_VIEWS = {
    "source": ("rec_variant_source_daily_metrics_v1", "source"),
    "position": ("rec_variant_position_daily_metrics_v1", "position"),
    "genre": ("rec_variant_genre_daily_metrics_v1", "genre"),
}
# The counts summed over the window's days for the totals (users are distinct per day only).
BREAKDOWN_COUNTS = ("impressions", "likes", "dislikes", "watchlists", "ratings", "detail_opens")


def parse_breakdown_view(value, field: str = "view") -> str | None:
    """`source`, `position` or `genre` from a query parameter, None when absent; InvalidInput
    naming `field` otherwise."""
    if value is None or value == "":
        return None
    if value not in BREAKDOWN_VIEWS:
        raise InvalidInput({field: [f"must be one of {', '.join(BREAKDOWN_VIEWS)}"]})
    return value


def window_days(window: dict) -> tuple[date, date] | None:
    """The UTC days a results window ({"from", "to"} ISO datetimes, `to` exclusive) touches:
    the first and last, or None when the window is empty."""
    start, end = (datetime.fromisoformat(window[key]) for key in ("from", "to"))
    if start >= end:
        return None
    return start.astimezone(UTC).date(), (end - timedelta(microseconds=1)).astimezone(UTC).date()


def experiment_daily_breakdown(experiment: Experiment, view: str, *, window: dict) -> dict:
    """The rows of one breakdown view for the experiment over the whole UTC days its results
    window touches (a `day` range, so only those days are read), and per variant and category
    the counts summed over those days with the like rate of the sums."""
    sql_view, column = BREAKDOWN_VIEWS[view]
    days = window_days(window)
    rows = []
    if days is not None:
        with reading_cursor() as cursor:
            cursor.execute(
                f"select * from {sql_view} "  # noqa: S608 - a name from BREAKDOWN_VIEWS
                "where experiment_key = %s and day between %s and %s "
                f"order by day, variant, {column}",
                [experiment.key, *days],
            )
            columns = [c.name for c in cursor.description]
            rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    totals: dict[tuple, dict] = {}
    for row in rows:
        row["day"] = row["day"].isoformat()
        del row["experiment_key"]
        total = totals.setdefault(
            (row["variant"], row[column]),
            {"variant": row["variant"], column: row[column], **dict.fromkeys(BREAKDOWN_COUNTS, 0)},
        )
        for name in BREAKDOWN_COUNTS:
            total[name] += row[name]
    for total in totals.values():
        total["like_rate"] = total["likes"] / total["impressions"]
    return {
        "view": view,
        "sql_view": sql_view,
        "category": column,
        "from": days[0].isoformat() if days else None,
        "to": days[1].isoformat() if days else None,
        "rows": rows,
        "totals": sorted(totals.values(), key=lambda t: (t["variant"], t[column])),
    }
