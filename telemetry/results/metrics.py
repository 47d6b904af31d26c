"""Catalogue metrics for an experiment: per-user counts from one SQL query, then the lifts of
recsys_experiments/lib/statistics.py per metric and variant, with adjusted p-values
(definitions in docs/recsys-experiments.md, "Metrics and inference").

- The window is `(start, end)`: impressions with `start <= created_at < end` (end None: now).
- The population is `{variant: user ids}`: a user counts in a variant only through impressions
  tagged with that variant (the caller has already dropped forced, multi-variant and
  before-phase users); None counts every user with a tagged impression.
- A user is in a variant's rows when they have at least one such impression, or are in the
  population without one (exposed app-side only, rec_exposures: zero counts). An outcome counts
  when it is joined to one of them on (user_id, rec_request_id, media_item_id), whenever it
  occurred; a repeated impression of the same item in the same request counts its outcomes once.
- CUPED (settings RESULTS_CUPED_DAYS, default 7; 0 turns it off): each user's pre-period
  counts, the same events in the N days before their first exposure in the phase (their
  impressions then, tagged or not, and the outcomes on those impressions that occurred before
  that moment), are the covariate of every metric (lib/statistics.py `cuped_*_lift`). A user
  with no impression in their pre-period has zero counts (X = 0).
- Conversions (rec_conversions, named by the metric's numerator_name/denominator_name): a
  conversion counts for variant v of the experiment when its experiments tag (the user's
  variants in force at occurred_at) says v, it occurred in the window, and its user is in v's
  rows; their count and value sum join the user's counts under `conversion:<name>`. Their
  CUPED pre-period is the user's conversions of that name in the N days before their first
  exposure, whatever their tag.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import compress

import numpy as np
from django.conf import settings
from django.utils import timezone

from recsys_experiments.db import reading_cursor
from recsys_experiments.lib.constants import (
    CONVERSION,
    IMPRESSION,
    MEAN,
    OUTCOME_TYPES,
    PROPORTION,
    RATIO,
)
from recsys_experiments.lib.statistics import (
    CORRECTIONS,
    CupedLift,
    Lift,
    Sequential,
    adjust_p_values,
    cuped_mean_lift,
    cuped_proportion_lift,
    cuped_ratio_lift,
    mean_lift,
    proportion_lift,
    ratio_lift,
)
from recsys_experiments.models import Experiment
from telemetry.models import Metric
from telemetry.rollups import Split, utc_today, window_split

# Column names come from lib/constants.OUTCOME_TYPES (never from input).
_OUTCOME_COUNTS = ",\n               ".join(
    f"count(*) filter (where o.outcome_type = '{kind}') as {kind}_events, "
    f"coalesce(sum(o.value) filter (where o.outcome_type = '{kind}'), 0) as {kind}_sum"
    for kind in OUTCOME_TYPES
)
# float8, not the numeric a sum of bigints is: psycopg builds a Decimal per numeric value
# (0.1 s for the 220,000 of a 20,000-user window), and the statistics take floats anyway.
_OUTCOME_TOTALS = ",\n       ".join(
    f"coalesce(sum(o.{kind}_events), 0)::float8, coalesce(sum(o.{kind}_sum), 0)::float8"
    for kind in OUTCOME_TYPES
)

# The rollups' columns for each outcome type's count and value sum, counted once per served
# (request, item) (telemetry/sql/rollups.v1.sql).
_ROLLUP_SUM = {
    kind: "rating_sum_once" if kind == "rating" else f"{kind}_sum" for kind in OUTCOME_TYPES
}
_ROLLUP_COUNTS = ",\n           ".join(
    f"u.{kind}_events, u.{_ROLLUP_SUM[kind]} as {kind}_sum" for kind in OUTCOME_TYPES
)


def _outcome_columns(alias: str) -> str:
    """Each outcome type's `<kind>_events, <kind>_sum` columns of relation `alias`."""
    return ", ".join(f"{alias}.{kind}_events, {alias}.{kind}_sum" for kind in OUTCOME_TYPES)


_OUTCOME_COLUMNS = _outcome_columns("o")

# One row per user and variant. The window is split (telemetry/rollups.py `window_split`):
# its clean rolled days come from rec_daily_user_rollups (`%(days)s`), the rest raw, one index
# range of rec_impressions per interval (`%(raw_from)s`, `%(raw_to)s`). Each served (request,
# item) is looked up in rec_outcomes by its index, once however often it was served: no join
# between two aggregates, whose sizes the planner cannot estimate (it once chose a nested loop
# over thousands of users). The only interpolation: the outcome columns, built from the
# constants above.
PER_USER_COUNTS = f"""
with served as (
    select i.user_id, i.rec_request_id, i.media_item_id,
           i.request_context -> 'experiments' ->> %(key)s as variant, count(*) as impressions
    from unnest(%(raw_from)s::timestamptz[], %(raw_to)s::timestamptz[]) as w(lo, hi)
    join rec_impressions as i on i.created_at >= w.lo and i.created_at < w.hi
    where i.request_context -> 'experiments' ? %(key)s
    group by 1, 2, 3, 4
),
counted as (
    select s.user_id, s.variant, s.impressions, {_OUTCOME_COLUMNS}
    from served as s
    left join lateral (
        select {_OUTCOME_COUNTS}
        from rec_outcomes as o
        where o.rec_request_id = s.rec_request_id and o.media_item_id = s.media_item_id
          and o.user_id = s.user_id
    ) as o on true
    union all
    select u.user_id, u.variant, u.impressions,
           {_ROLLUP_COUNTS}
    from rec_daily_user_rollups as u
    where u.experiment_key = %(key)s and u.day = any(%(days)s::date[]) and u.impressions > 0
      and u.day between %(first_day)s::date and %(last_day)s::date
)
select o.user_id, o.variant, sum(o.impressions)::float8,
       {_OUTCOME_TOTALS}
from counted as o
group by o.user_id, o.variant
order by o.variant, o.user_id
"""  # noqa: S608

# Each wanted user's first impression tagged with the experiment in [phase start, end). The
# wanted users are `%(users)s` (the window's population), or with NULL every user with a
# tagged impression in the phase. Per wanted user it is a handful of index probes, whatever
# the length of the phase: their earliest rolled day's first_at (idx_rec_daily_user_rollups_user,
# in day order) and, in each raw interval (`%(phase_raw_from)s`, `%(phase_raw_to)s`) that
# starts before that, their earliest tagged impression (idx_rec_impressions_user_time, in
# time order). Reading every user's rows over the whole phase made the results grow with the
# experiment's history.
_FIRST_EXPOSURE = """
wanted as (
    select u.user_id from unnest(%(users)s::uuid[]) as u(user_id)
    union
    select i.user_id
    from unnest(%(phase_raw_from)s::timestamptz[], %(phase_raw_to)s::timestamptz[])
         as w(lo, hi)
    join rec_impressions as i on i.created_at >= w.lo and i.created_at < w.hi
    where %(users)s::uuid[] is null and i.request_context -> 'experiments' ? %(key)s
    union
    select u.user_id
    from rec_daily_user_rollups as u
    where %(users)s::uuid[] is null
      and u.experiment_key = %(key)s and u.day = any(%(phase_days)s::date[])
      and u.day between %(phase_first_day)s::date and %(phase_last_day)s::date
      and u.impressions > 0
),
first_exposure as (
    select w.user_id, least(rolled.first_at, raw.first_at) as exposed_at
    from wanted as w
    left join lateral (
        select u.first_at
        from rec_daily_user_rollups as u
        where u.user_id = w.user_id
          and u.day >= %(phase_first_day)s::date and u.day <= %(phase_last_day)s::date
          and u.day = any(%(phase_days)s::date[])
          and u.experiment_key = %(key)s and u.impressions > 0
        order by u.day, u.first_at
        limit 1
    ) as rolled on true
    left join lateral (
        select min(e.created_at) as first_at
        from unnest(%(phase_raw_from)s::timestamptz[], %(phase_raw_to)s::timestamptz[])
             as r(lo, hi)
        -- Only a raw interval before the user's first rolled exposure can hold an earlier one
        -- (today never does for a user seen on a rolled day).
        cross join lateral (
            select 1 where r.lo < coalesce(rolled.first_at, 'infinity'::timestamptz)
        ) as earlier
        cross join lateral (
            select i.created_at
            from rec_impressions as i
            where i.user_id = w.user_id and i.created_at >= r.lo and i.created_at < r.hi
              and i.request_context -> 'experiments' ? %(key)s
            order by i.created_at
            limit 1
        ) as e
    ) as raw on true
    where rolled.first_at is not null or raw.first_at is not null
)"""

# Each user's rolled whole days summed, leaving out the late ones (see PRE_PERIOD_COUNTS).
_ROLLED_TOTALS = ",\n               ".join(
    [
        "coalesce(sum(t.impressions) filter (where t.counted), 0) as impressions",
        *(
            f"coalesce(sum(t.{kind}_events) filter (where t.counted), 0) as {kind}_events, "
            f"coalesce(sum(t.{_ROLLUP_SUM[kind]}) filter (where t.counted), 0) as {kind}_sum"
            for kind in OUTCOME_TYPES
        ),
    ]
)

# One row per user with an impression in their pre-period: the N days before their first
# exposure to the experiment in the phase, all their impressions (tagged or not) and the
# outcomes on them that occurred before the exposure (an outcome after it could carry the
# treatment's effect). Per user:
# - the whole UTC days inside the pre-period that are rolled and clean (`%(pre_days)s`) come
#   from rec_daily_user_totals, one index range of its key (user_id, day) per user, unless
#   an outcome on that day's impressions occurred at or after the exposure (last_outcome_at:
#   a late day, read raw like the rest);
# - the rest is read raw: the partial days at both ends, the whole days that are not rolled
#   and clean (`%(pre_raw_days)s`) and the late days, each an index range scan of
#   idx_rec_impressions_user_time (user_id, created_at); each served (request, item) looks its
#   outcomes up by index.
# A rolled and clean day without a totals row had no impression: nothing to read, whole or
# partial (the same index range tells). Only rows that hold something are made (was: a row
# per user and day, 8 per user for 7 days, and a raw probe of both partial days).
PRE_PERIOD_COUNTS = f"""
with{_FIRST_EXPOSURE},
bounds as (
    select f.user_id, f.exposed_at,
           f.exposed_at - make_interval(days => %(days)s) as pre_start,
           -- The whole UTC days inside [pre_start, exposed_at): from the first midnight at or
           -- after pre_start through the day before the exposure's day. The partial days are
           -- first_whole - 1 (from pre_start) and last_whole + 1 (to the exposure).
           ((f.exposed_at - make_interval(days => %(days)s) - interval '1 microsecond')
            at time zone 'UTC')::date + 1 as first_whole,
           (f.exposed_at at time zone 'UTC')::date - 1 as last_whole
    from first_exposure as f
),
rolled as (
    select b.*, t.*
    from bounds as b
    -- An aggregate per user: planned as one index range per user, never as a join with
    -- every user's totals over the phase.
    cross join lateral (
        select {_ROLLED_TOTALS},
               array_agg(t.day) filter (where t.late) as late_days,
               coalesce(bool_or(t.day < b.first_whole), false) as first_edge_served,
               coalesce(bool_or(t.day > b.last_whole), false) as last_edge_served
        from (
            select t.*, t.whole and not t.late as counted
            from (
                select t.*, t.day between b.first_whole and b.last_whole as whole,
                       t.day between b.first_whole and b.last_whole
                           and coalesce(t.last_outcome_at >= b.exposed_at, false) as late
                from rec_daily_user_totals as t
                where t.user_id = b.user_id
                  and t.day between b.first_whole - 1 and b.last_whole + 1
                  and t.day = any(%(pre_days)s::date[])
            ) as t
        ) as t
    ) as t
),
raw_ranges as (
    select r.user_id, r.exposed_at, r.pre_start as lo,
           least(r.exposed_at, r.first_whole::timestamp at time zone 'UTC') as hi
    from rolled as r
    where r.first_edge_served or r.first_whole - 1 = any(%(pre_raw_days)s::date[])
    union all
    select r.user_id, r.exposed_at,
           greatest(r.pre_start, (r.last_whole + 1)::timestamp at time zone 'UTC'),
           r.exposed_at
    from rolled as r
    where r.last_edge_served or r.last_whole + 1 = any(%(pre_raw_days)s::date[])
    union all
    select b.user_id, b.exposed_at, d.day::timestamp at time zone 'UTC',
           (d.day + 1)::timestamp at time zone 'UTC'
    from bounds as b
    join unnest(%(pre_raw_days)s::date[]) as d(day)
      on d.day between b.first_whole and b.last_whole
    union all
    select r.user_id, r.exposed_at, d.day::timestamp at time zone 'UTC',
           (d.day + 1)::timestamp at time zone 'UTC'
    from rolled as r
    cross join unnest(r.late_days) as d(day)
),
served as (
    select p.user_id, p.exposed_at, e.rec_request_id, e.media_item_id, e.impressions
    from raw_ranges as p
    -- One index range per user and range (a lateral aggregate is never flattened into a
    -- join: the planner, misjudging how few rows these are, merged them with every impression).
    cross join lateral (
        select e.rec_request_id, e.media_item_id, count(*) as impressions
        from rec_impressions as e
        where e.user_id = p.user_id and e.created_at >= p.lo and e.created_at < p.hi
        group by e.rec_request_id, e.media_item_id
    ) as e
    where p.lo < p.hi
),
counted as (
    select s.user_id, s.impressions, {_OUTCOME_COLUMNS}
    from served as s
    left join lateral (
        select {_OUTCOME_COUNTS}
        from rec_outcomes as o
        where o.rec_request_id = s.rec_request_id and o.media_item_id = s.media_item_id
          and o.user_id = s.user_id and o.occurred_at < s.exposed_at
    ) as o on true
    union all
    select r.user_id, r.impressions, {_outcome_columns("r")}
    from rolled as r
    where r.impressions > 0
)
select o.user_id, sum(o.impressions)::float8,
       {_OUTCOME_TOTALS}
from counted as o
group by o.user_id
"""  # noqa: S608


# Per exposed user and variant, the conversions of the named metrics tagged with that variant
# and occurred in the window: rolled days from rec_daily_conversion_rollups, the rest raw
# (idx_rec_conversions_metric: metric_name, occurred_at).
CONVERSION_COUNTS = """
with exposed as (
    select distinct e.user_id, e.variant
    from (
        select i.user_id, i.request_context -> 'experiments' ->> %(key)s as variant
        from unnest(%(raw_from)s::timestamptz[], %(raw_to)s::timestamptz[]) as w(lo, hi)
        join rec_impressions as i on i.created_at >= w.lo and i.created_at < w.hi
        where i.request_context -> 'experiments' ? %(key)s
        union all
        select u.user_id, u.variant
        from rec_daily_user_rollups as u
        where u.experiment_key = %(key)s and u.day = any(%(days)s::date[])
          and u.day between %(first_day)s::date and %(last_day)s::date
          and u.impressions > 0
    ) as e
),
converted as (
    select c.user_id, c.request_context -> 'experiments' ->> %(key)s as variant,
           c.metric_name, count(*) as events, sum(c.value) as total
    from unnest(%(raw_from)s::timestamptz[], %(raw_to)s::timestamptz[]) as w(lo, hi)
    join rec_conversions as c
      on c.metric_name = any(%(names)s::text[])
     and c.occurred_at >= w.lo and c.occurred_at < w.hi
    where c.request_context -> 'experiments' ? %(key)s
    group by 1, 2, 3
    union all
    select r.user_id, r.variant, r.metric_name, r.conversions, r.value_sum
    from rec_daily_conversion_rollups as r
    where r.experiment_key = %(key)s and r.day = any(%(days)s::date[])
      and r.day between %(first_day)s::date and %(last_day)s::date
      and r.metric_name = any(%(names)s::text[])
)
select e.user_id, e.variant, c.metric_name, sum(c.events), sum(c.total)
from exposed as e
join converted as c on c.user_id = e.user_id and c.variant = e.variant
group by e.user_id, e.variant, c.metric_name
"""

# Each exposed user's conversions of the named metrics in their CUPED pre-period (the `days`
# days before their first exposure in the phase, as PRE_PERIOD_COUNTS), whatever their tag:
# each user's are an index range scan of idx_rec_conversions_user (user_id, occurred_at).
PRE_PERIOD_CONVERSIONS = f"""
with{_FIRST_EXPOSURE}
select f.user_id, c.metric_name, c.events, c.total
from first_exposure as f
cross join lateral (
    select c.metric_name, count(*) as events, sum(c.value) as total
    from rec_conversions as c
    where c.user_id = f.user_id
      and c.occurred_at >= f.exposed_at - make_interval(days => %(days)s)
      and c.occurred_at < f.exposed_at
      and c.metric_name = any(%(names)s::text[])
    group by c.metric_name
) as c
"""  # noqa: S608


# An Arm's columns: impressions, then per outcome type its events and value sums, in the
# order of the SQL's outcome columns (OUTCOME_TYPES); conversions are added by name.
_COLUMNS = 1 + 2 * len(OUTCOME_TYPES)


@dataclass(frozen=True)
class Arm:
    """One variant's users as columns, one entry per user in `user_ids` order: impressions
    and, per outcome type (and per `conversion:<name>`), the number of events and the sum of
    their values; `pre`, the same columns over each user's CUPED pre-period (None: not
    computed). Columns, not an object per user: a window of 20,000 users is a few arrays."""

    user_ids: Sequence[str]
    impressions: np.ndarray
    events: dict[str, np.ndarray]
    sums: dict[str, np.ndarray]
    pre: Arm | None = None

    def __len__(self) -> int:
        return len(self.impressions)

    def count(self, event: str) -> np.ndarray:
        """Impressions, or the events of this kind (zeros for a kind without any)."""
        return self.impressions if event == IMPRESSION else self.events_of(event)

    def events_of(self, event: str) -> np.ndarray:
        return self.events.get(event, np.zeros(len(self)))

    def total(self, event: str) -> np.ndarray:
        return self.sums.get(event, np.zeros(len(self)))

    @property
    def before(self) -> Arm:
        """The pre-period columns; zeros when not computed."""
        return self.pre if self.pre is not None else _arm(self.user_ids, [])

    def aligned(self, user_ids: list[str]) -> Arm:
        """These users' entries, in this order; zeros for a user this arm does not have."""
        where = {user_id: n for n, user_id in enumerate(self.user_ids)}
        index = np.array([where.get(user_id, len(self)) for user_id in user_ids], dtype=int)

        def pick(column: np.ndarray) -> np.ndarray:
            return np.append(column, 0.0)[index]

        return Arm(
            list(user_ids),
            pick(self.impressions),
            {k: pick(v) for k, v in self.events.items()},
            {k: pick(v) for k, v in self.sums.items()},
        )

    def with_conversions(self, columns: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Arm:
        events, sums = dict(self.events), dict(self.sums)
        for name, (counts, totals) in columns.items():
            events[_conversion_key(name)], sums[_conversion_key(name)] = counts, totals
        return replace(self, events=events, sums=sums)

    def subset(self, mask: np.ndarray) -> Arm:
        return Arm(
            list(compress(self.user_ids, mask)),
            self.impressions[mask],
            {k: v[mask] for k, v in self.events.items()},
            {k: v[mask] for k, v in self.sums.items()},
            self.pre.subset(mask) if self.pre is not None else None,
        )


def _arm(user_ids: list[str], rows: Sequence[Sequence]) -> Arm:
    """An Arm from one row of numbers per user in _COLUMNS order ([]: all zeros)."""
    table = (
        np.array(rows, dtype=float).reshape(len(rows), _COLUMNS)
        if len(rows)
        else np.zeros((len(user_ids), _COLUMNS))
    )
    events = {kind: table[:, 1 + 2 * n] for n, kind in enumerate(OUTCOME_TYPES)}
    sums = {kind: table[:, 2 + 2 * n] for n, kind in enumerate(OUTCOME_TYPES)}
    return Arm(user_ids, table[:, 0], events, sums)


def _conversion_columns(
    user_ids: list[str], found: Mapping, names: Collection[str], key=lambda user_id: user_id
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{name: (counts, sums)} aligned with `user_ids` from {key(user id): {name: (count,
    sum)}}; zeros for a user without any."""
    columns = {}
    for name in names:
        pairs = [found.get(key(user_id), {}).get(name, (0, 0.0)) for user_id in user_ids]
        columns[name] = (
            np.array([count for count, _ in pairs], dtype=float).reshape(len(pairs)),
            np.array([total for _, total in pairs], dtype=float).reshape(len(pairs)),
        )
    return columns


def cuped_days() -> int:
    """settings.RESULTS_CUPED_DAYS: the CUPED pre-period in days; 0 turns CUPED off."""
    return int(getattr(settings, "RESULTS_CUPED_DAYS", 7))


def _window(window) -> tuple[datetime, datetime]:
    start, end = window
    return start, end if end is not None else timezone.now()


def _numbers(impressions, per_type) -> tuple:
    """One SQL row's counts as numbers (NULL sums: 0), in _COLUMNS order."""
    return (impressions, *(v or 0 for v in per_type))


# The raw intervals that hold at least one impression (a probe of the created_at index per
# interval and partition, not a scan).
_OCCUPIED = """
select w.n
from unnest(%s::timestamptz[], %s::timestamptz[]) with ordinality as w(lo, hi, n)
where (select true from rec_impressions as i
       where i.created_at >= w.lo and i.created_at < w.hi limit 1)
order by w.n
"""


def _occupied(split: Split) -> Split:
    """The split without its raw intervals that hold no impression: _FIRST_EXPOSURE probes
    each raw interval once per user, and the phase's often has an empty one (from its start to
    the first rolled day)."""
    if not split.raw_from:
        return split
    with reading_cursor() as cursor:
        cursor.execute(_OCCUPIED, [split.raw_from, split.raw_to])
        kept = [n - 1 for (n,) in cursor.fetchall()]
    return replace(
        split,
        raw_from=[split.raw_from[n] for n in kept],
        raw_to=[split.raw_to[n] for n in kept],
    )


def _first_exposure_params(start, end, phase_start, users: Collection[str] | None) -> dict:
    """_FIRST_EXPOSURE's parameters: the phase's window split (its raw intervals that hold
    impressions), the range of its rolled days (an index range for each user's probe) and the
    wanted users (None: every exposed one)."""
    phase = _occupied(window_split(phase_start if phase_start is not None else start, end))
    return {
        **phase.params("phase_"),
        # One array literal, not a list: psycopg quotes a list item by item (0.15 s for the
        # 20,000 ids of a large window); user ids (uuid text) need no quoting.
        "users": None if users is None else "{" + ",".join(users) + "}",
    }


def _pre_period_splits(start, end, phase_start, days: int, users) -> dict:
    """_FIRST_EXPOSURE's parameters and the rolled days any pre-period can cover (from `days`
    days before the phase's start)."""
    phase_start = phase_start if phase_start is not None else start
    rolled = window_split(phase_start - timedelta(days=days), end).days
    first, last = (phase_start - timedelta(days=days)).astimezone(UTC).date(), utc_today(end)
    clean = set(rolled)
    return {
        **_first_exposure_params(start, end, phase_start, users),
        "pre_days": rolled,
        # The days a pre-period may cover that are not rolled and clean: read raw.
        "pre_raw_days": [
            first + timedelta(days=n)
            for n in range((last - first).days + 1)
            if first + timedelta(days=n) not in clean
        ],
    }


def pre_period_counts(
    experiment_key: str,
    *,
    window: tuple[datetime, datetime | None],
    phase_start: datetime | None = None,
    days: int,
    users: Collection[str] | None = None,
) -> Arm:
    """The counts over each exposed user's pre-period: the `days` days before their
    first impression tagged with the experiment at or after `phase_start` (default the window's
    start) and before the window's end. Only `users` when given (their cost, not the phase's);
    users without a pre-period impression are absent. One query."""
    start, end = _window(window)
    with reading_cursor() as cursor:
        cursor.execute(
            PRE_PERIOD_COUNTS,
            {
                "key": experiment_key,
                "days": days,
                **_pre_period_splits(start, end, phase_start, days, users),
            },
        )
        rows = cursor.fetchall()
    return _arm(
        [str(user_id) for user_id, *_ in rows],
        [_numbers(impressions, per_type) for _, impressions, *per_type in rows],
    )


def _conversion_key(name: str) -> str:
    return f"{CONVERSION}:{name}"


def conversion_counts(
    experiment_key: str, names: Collection[str], *, window: tuple[datetime, datetime | None]
) -> dict[tuple[str, str], dict[str, tuple[int, float]]]:
    """{(user id, variant): {name: (conversions, value sum)}}: each exposed user's conversions
    of `names` tagged with their variant and occurred in the window. One query."""
    start, end = _window(window)
    with reading_cursor() as cursor:
        cursor.execute(
            CONVERSION_COUNTS,
            {"key": experiment_key, "names": sorted(names), **window_split(start, end).params()},
        )
        rows = cursor.fetchall()
    found: dict[tuple[str, str], dict[str, tuple[int, float]]] = {}
    for user_id, variant, name, events, total in rows:
        found.setdefault((str(user_id), variant), {})[name] = (int(events), float(total or 0))
    return found


def pre_period_conversions(
    experiment_key: str,
    names: Collection[str],
    *,
    window: tuple[datetime, datetime | None],
    phase_start: datetime | None = None,
    days: int,
    users: Collection[str] | None = None,
) -> dict[str, dict[str, tuple[int, float]]]:
    """{user id: {name: (conversions, value sum)}} in each exposed user's pre-period (see
    `pre_period_counts`, also for `users`), whatever their tag. One query."""
    start, end = _window(window)
    with reading_cursor() as cursor:
        cursor.execute(
            PRE_PERIOD_CONVERSIONS,
            {
                "key": experiment_key,
                "days": days,
                "names": sorted(names),
                **_first_exposure_params(start, end, phase_start, users),
            },
        )
        rows = cursor.fetchall()
    found: dict[str, dict[str, tuple[int, float]]] = {}
    for user_id, name, events, total in rows:
        found.setdefault(str(user_id), {})[name] = (int(events), float(total or 0))
    return found


def variant_counts(
    experiment_key: str,
    *,
    population: Mapping[str, Collection] | None,
    window: tuple[datetime, datetime | None],
    pre_days: int = 0,
    phase_start: datetime | None = None,
    conversions: Collection[str] = (),
) -> dict[str, Arm]:
    """{variant: its users' columns}: impressions in the window and, per outcome type, the
    outcomes joined to them (count and value sum). One query; with `pre_days`, a second one
    for the pre-period counts (`pre`, see `pre_period_counts`). With `conversions` (names),
    each user's conversions of those names too, under `conversion:<name>` (one more query, and
    one for their pre-period)."""
    start, end = _window(window)
    split = window_split(start, end)
    with reading_cursor() as cursor:
        cursor.execute(PER_USER_COUNTS, {"key": experiment_key, **split.params()})
        rows = cursor.fetchall()
    # The population is applied here, not in SQL: a user-id array joined in the query is
    # estimated at a handful of rows and planned as a nested loop over every impression.
    members = (
        None
        if population is None
        else {(str(user_id), variant) for variant, ids in population.items() for user_id in ids}
    )
    found: dict[str, tuple[list[str], list[tuple]]] = {}
    served = set()
    for user_id, variant, impressions, *per_type in rows:
        user_id = str(user_id)
        served.add(user_id)
        if members is not None and (user_id, variant) not in members:
            continue
        ids, numbers = found.setdefault(variant, ([], []))
        ids.append(user_id)
        numbers.append(_numbers(impressions, per_type))
    # A member without any tagged impression in the window was exposed app-side only
    # (rec_exposures): an exposed user with zero impressions and outcomes (and the
    # conversions tagged with the variant).
    for user_id, variant in sorted(members or ()):
        if user_id not in served:
            ids, numbers = found.setdefault(variant, ([], []))
            ids.append(user_id)
            numbers.append((0,) * _COLUMNS)
    # The pre-periods of the users counted here only: the window's, not the phase's.
    wanted = {user_id for ids, _ in found.values() for user_id in ids}
    pre = (
        pre_period_counts(
            experiment_key, window=window, phase_start=phase_start, days=pre_days, users=wanted
        )
        if pre_days > 0
        else None
    )
    converted = conversion_counts(experiment_key, conversions, window=window) if conversions else {}
    pre_converted = (
        pre_period_conversions(
            experiment_key,
            conversions,
            window=window,
            phase_start=phase_start,
            days=pre_days,
            users=wanted,
        )
        if conversions and pre_days > 0
        else {}
    )
    arms = {}
    for variant, (ids, numbers) in found.items():
        before = None
        if pre is not None:
            before = pre.aligned(ids).with_conversions(
                _conversion_columns(ids, pre_converted, conversions)
            )
        arms[variant] = replace(
            _arm(ids, numbers).with_conversions(
                _conversion_columns(
                    ids, converted, conversions, key=lambda user_id, v=variant: (user_id, v)
                )
            ),
            pre=before,
        )
    return arms


def metric_lift(
    metric: Metric,
    users: Arm,
    control: Arm,
    sequential: Sequential | None = None,
) -> Lift:
    """The metric's lift of one variant's users against control's users (always-valid
    intervals and p-value with `sequential`, fixed-horizon ones without)."""
    num, den = metric.numerator_key, metric.denominator_key
    if metric.kind == RATIO:
        return ratio_lift(
            numerator=users.count(num),
            denominator=users.count(den),
            control_numerator=control.count(num),
            control_denominator=control.count(den),
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
            converted=int((users.count(num) > 0).sum()),
            exposed=len(users),
            control_converted=int((control.count(num) > 0).sum()),
            control_exposed=len(control),
            sequential=sequential,
        )
    raise ValueError(f"unknown metric kind {metric.kind!r}")


def metric_cuped_lift(
    metric: Metric,
    users: Arm,
    control: Arm,
    sequential: Sequential | None = None,
) -> CupedLift:
    """The metric's CUPED lift: each user's covariate is the same metric over their
    pre-period counts (`Arm.before`; zero without any); always-valid intervals and
    p-value on the adjusted standard errors with `sequential`."""
    num, den = metric.numerator_key, metric.denominator_key
    if metric.kind == RATIO:
        return cuped_ratio_lift(
            numerator=users.count(num),
            denominator=users.count(den),
            pre_numerator=users.before.count(num),
            pre_denominator=users.before.count(den),
            control_numerator=control.count(num),
            control_denominator=control.count(den),
            control_pre_numerator=control.before.count(num),
            control_pre_denominator=control.before.count(den),
            sequential=sequential,
        )
    if metric.kind == MEAN:
        kept, kept_control = _valued(metric, users), _valued(metric, control)
        return cuped_mean_lift(
            values=per_user_values(metric, kept),
            covariates=_pre_values(metric, kept),
            control_values=per_user_values(metric, kept_control),
            control_covariates=_pre_values(metric, kept_control),
            sequential=sequential,
        )
    if metric.kind == PROPORTION:
        return cuped_proportion_lift(
            converted=users.count(num) > 0,
            covariates=(users.before.count(num) > 0).astype(float),
            control_converted=control.count(num) > 0,
            control_covariates=(control.before.count(num) > 0).astype(float),
            sequential=sequential,
        )
    raise ValueError(f"unknown metric kind {metric.kind!r}")


def _valued(metric: Metric, users: Arm) -> Arm:
    """The users a mean metric has a value for: all, or (`mean` of values) those with one."""
    if metric.value != "mean":
        return users
    return users.subset(users.events_of(metric.numerator_key) > 0)


def _pre_values(metric: Metric, users: Arm) -> np.ndarray:
    """A mean metric's value over each user's pre-period; 0 when they had no such event
    (for the `mean` of values too: X = 0 stands for "no pre-period data")."""
    pre = users.before
    if metric.value != "mean":
        return per_user_values(metric, pre)
    events = pre.events_of(metric.numerator_key)
    has = events > 0
    return np.where(has, pre.total(metric.numerator_key) / np.where(has, events, 1.0), 0.0)


def per_user_values(metric: Metric, users: Arm) -> np.ndarray:
    """A mean metric's value per user: the count of events, the sum of their values, or (for
    `mean`) the mean of their values over users with at least one."""
    key = metric.numerator_key
    if metric.value == "count":
        return users.count(key)
    if metric.value == "sum":
        return users.total(key)
    has = users.events_of(key) > 0
    return users.total(key)[has] / users.events_of(key)[has]


def metric_rows(
    experiment: Experiment,
    population: Mapping[str, Collection] | None,
    window: tuple[datetime, datetime | None],
    metrics: Iterable[Metric],
    control: str,
    correction: str = "holm",
    *,
    phase_start: datetime | None = None,
    pre_days: int | None = None,
    sequential: Sequential | None = None,
    counts: Mapping[str, Arm] | None = None,
) -> list[dict]:
    """One row per metric and non-control variant: {metric, kind, variant, control_value,
    value, abs_lift, abs_ci_low, abs_ci_high, rel_lift, rel_ci_low, rel_ci_high, p_value,
    p_adjusted, sequential, std_error, cuped, variance_reduction, reason?}. `p_value` is
    always the raw p-value (what the primary metric is judged on); `p_adjusted` corrects across
    all rows (metrics x variants) by Holm (default) or Benjamini-Hochberg ("bh"); a row with no
    test has neither. With CUPED (`pre_days`, default settings.RESULTS_CUPED_DAYS, > 0; the
    pre-period ends at each user's first exposure at or after `phase_start`) the values, lifts,
    intervals and p-values are the adjusted ones, `variance_reduction` is
    1 - Var(adjusted lift) / Var(plain lift), None without pre-period data. With `sequential`
    the intervals and p-values are always-valid (`sequential: true`) and the correction applies
    to those p-values; `std_error` is the absolute lift's standard error (after CUPED).
    `counts`: the users' columns when the caller has read them already (`variant_counts` with
    the same population, window, pre_days and phase_start, and these metrics' conversions)."""
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}")
    if control not in experiment.variant_names:
        raise ValueError(f"control {control!r} is not a variant of {experiment.key}")
    pre_days = cuped_days() if pre_days is None else pre_days
    metrics = list(metrics)
    by_variant = {name: _arm([], []) for name in experiment.variant_names}
    by_variant |= (
        counts
        if counts is not None
        else variant_counts(
            experiment.key,
            population=population,
            window=window,
            pre_days=pre_days,
            phase_start=phase_start,
            conversions=conversion_names(metrics),
        )
    )
    rows = []
    for metric in metrics:
        for variant in experiment.variant_names:
            if variant == control:
                continue
            if pre_days > 0:
                cuped = metric_cuped_lift(
                    metric, by_variant[variant], by_variant[control], sequential
                )
                lift, reduction = cuped.lift, cuped.variance_reduction
            else:
                lift, reduction = (
                    metric_lift(metric, by_variant[variant], by_variant[control], sequential),
                    None,
                )
            row = {"metric": metric.key, "kind": metric.kind, "variant": variant, **lift.as_dict()}
            rows.append({**row, "cuped": pre_days > 0, "variance_reduction": reduction})
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
                "cuped": row["cuped"],
                "variance_reduction": row["variance_reduction"],
                "std_error": row["std_error"],
                **({"reason": reason} if reason else {}),
            }
        )
    return ordered


def conversion_names(metrics: Iterable[Metric]) -> set[str]:
    """The conversions these metrics count (rec_conversions metric names)."""
    return set().union(*(metric.conversion_names for metric in metrics))


def experiment_metrics(experiment: Experiment) -> list[Metric]:
    """The experiment's metrics, primary first; the whole catalogue when it names none."""
    linked = [link.metric for link in experiment.experiment_metrics.select_related("metric")]
    return linked or list(Metric.objects.all())


def primary_metric(experiment: Experiment) -> Metric | None:
    link = experiment.experiment_metrics.filter(is_primary=True).select_related("metric").first()
    return link.metric if link else None
