"""The daily rollups (telemetry/sql/rollups.v1.sql; docs/telemetry.md, "Rollups").

Complete UTC days are rolled into per-user aggregates by `rec_rollup_day()`; the rolled days
are contiguous up to a watermark, and a late event reopens its day (marks it dirty) until it
is rolled again. Readers split a time window into the clean rolled days wholly inside it (read
from the rollups) and the rest (read raw): `window_split`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from recsys_experiments.db import reading_cursor
from recsys_experiments.lib.errors import InvalidInput


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def utc_today(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(UTC).date()


def rollup_state() -> tuple[date | None, set[date]]:
    """(watermark, dirty days), as seen where the window's rows are read: a replica that has
    not replayed a refresh yet reads those days raw, still exactly."""
    with reading_cursor() as cursor:
        cursor.execute(
            "select rec_rollup_watermark(), "
            "array(select day from rec_rollup_days where dirty order by day)"
        )
        watermark, dirty = cursor.fetchone()
    return watermark, set(dirty)


def rollup_through(*, through: date) -> list[date]:
    """Roll every dirty day up to `through` and every day after the watermark through it (at
    most yesterday, UTC); the days rolled, oldest dirty first. Idempotent."""
    with connection.cursor() as cursor:
        cursor.execute("select d from rec_rollup_through(%s) as d", [through])
        return [row[0] for row in cursor.fetchall()]


def rollup_rebuild_day(*, day: date) -> list[date]:
    """Roll one complete UTC day again; a day after the watermark is reached by catching up
    through it (the rolled days stay contiguous). The days rolled."""
    if day >= utc_today():
        raise InvalidInput({"day": [f"{day.isoformat()} is not a complete UTC day yet"]})
    watermark, _ = rollup_state()
    if watermark is None or day > watermark:
        return rollup_through(through=day)
    with connection.cursor() as cursor:
        cursor.execute("select rec_rollup_day(%s)", [day])
    return [day]


def rollup_ensure(first: date, last: date) -> bool:
    """On-demand refresh before a read of the complete days `first`..`last`: roll them when
    missing or dirty. False when that is not possible here (a read-only replica, a role
    without the right): the reader then reads those days raw, still exactly."""
    last = min(last, utc_today() - timedelta(days=1))
    if first > last:
        return True
    watermark, dirty = rollup_state()
    if watermark is not None and watermark >= last and not any(first <= d <= last for d in dirty):
        return True
    try:
        with transaction.atomic():
            rollup_through(through=last)
    except DatabaseError:
        return False
    return True


@dataclass(frozen=True)
class Split:
    """A window [start, end) as clean rolled days (`days`) and the raw rest (`raw_from[i]` to
    `raw_to[i]`, end exclusive)."""

    days: list[date] = field(default_factory=list)
    raw_from: list[datetime] = field(default_factory=list)
    raw_to: list[datetime] = field(default_factory=list)

    def params(self, prefix: str = "") -> dict:
        """The query parameters; `first_day`/`last_day` bound the rolled days (NULL without
        any), so that a `day between` beside `day = any(days)` is an index range on a
        rollup's key, not a scan of every rolled day of its history."""
        return {
            f"{prefix}days": self.days,
            f"{prefix}first_day": min(self.days, default=None),
            f"{prefix}last_day": max(self.days, default=None),
            f"{prefix}raw_from": self.raw_from,
            f"{prefix}raw_to": self.raw_to,
        }


def window_split(
    start: datetime, end: datetime, *, refresh: bool = True, rollups: bool = True
) -> Split:
    """Split [start, end): the complete UTC days wholly inside it that are rolled and clean
    (after an on-demand refresh unless `refresh` is False), and the intervals left to read
    raw (partial days at the edges, today, dirty or unrolled days). `rollups=False` reads
    everything raw."""
    if start >= end:
        return Split()
    # settings.TELEMETRY_ROLLUPS (default on): off reads every window raw, as before rollups.
    rollups = rollups and getattr(settings, "TELEMETRY_ROLLUPS", True)
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    first = start_utc.date() + timedelta(days=0 if start_utc == _midnight(start_utc.date()) else 1)
    last = min(end_utc.date() - timedelta(days=1), utc_today() - timedelta(days=1))
    days: list[date] = []
    if rollups and first <= last:
        if refresh:
            rollup_ensure(first, last)
        watermark, dirty = rollup_state()
        if watermark is not None:
            day = first
            while day <= min(last, watermark):
                if day not in dirty:
                    days.append(day)
                day += timedelta(days=1)
    raw_from, raw_to = [], []
    cursor = start_utc
    for day in days:
        if cursor < _midnight(day):
            raw_from.append(cursor)
            raw_to.append(_midnight(day))
        cursor = _midnight(day + timedelta(days=1))
    if cursor < end_utc:
        raw_from.append(cursor)
        raw_to.append(end_utc)
    return Split(days, raw_from, raw_to)
