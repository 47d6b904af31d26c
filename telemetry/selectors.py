"""Reads of the daily telemetry views for the admin, the admin API and the commands."""

from __future__ import annotations

from recsys_experiments.db import reading_cursor


def _rows(query: str, params: list) -> list[dict]:
    with reading_cursor() as cursor:
        cursor.execute(query, params)
        columns = [column.name for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def telemetry_health(*, days: int = 7, until=None) -> dict:
    """Health over the `days` UTC days ending on `until` (a date; default today, included),
    and the alerts firing now."""
    daily = _rows(
        """
        select day, impressions, impressions_missing_experiments, outcomes,
               outcomes_without_impression
        from rec_health_daily_metrics_v1
        where day between coalesce(%s::date, current_date) - %s
                      and coalesce(%s::date, current_date)
        order by day
        """,
        [until, days - 1, until],
    )
    [last] = _rows("select max(created_at) as last_impression_at from rec_impressions", []) or [
        {"last_impression_at": None}
    ]
    alerts = _rows(
        "select day, alert, value, threshold from rec_active_alerts_v1 order by 1, 2", []
    )
    impressions = sum(row["impressions"] for row in daily)
    missing = sum(row["impressions_missing_experiments"] for row in daily)
    outcomes = sum(row["outcomes"] for row in daily)
    orphans = sum(row["outcomes_without_impression"] for row in daily)
    return {
        "days": days,
        "healthy": not alerts,
        "impressions": impressions,
        "impressions_missing_experiments": missing,
        "impressions_missing_experiments_share": _share(missing, impressions),
        "outcomes": outcomes,
        "outcomes_without_impression": orphans,
        "outcomes_without_impression_share": _share(orphans, outcomes),
        "last_impression_at": (
            last["last_impression_at"].isoformat() if last["last_impression_at"] else None
        ),
        "active_alerts": [{**alert, "day": alert["day"].isoformat()} for alert in alerts],
        "daily": [{**row, "day": row["day"].isoformat()} for row in daily],
    }
