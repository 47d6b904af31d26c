"""Experiment results from the raw impressions and outcomes (definitions in
docs/recsys-experiments.md, "How results are computed").

Population and window: results are per phase (rec_experiment_phases; default the latest) and
cover that phase's run, from its start to its end (or now), optionally narrowed by `days`
(the last N UTC days ending at the phase's end), `date_from` and `date_to` (UTC dates,
inclusive). An ended experiment's window never moves, so its results never change.

A user exposed in the window (at least one impression tagged with the experiment, or an
app-side exposure to it, rec_exposures, that occurred in the window) is left
out of inference, and counted in `excluded`, when they were forced into a variant (manual
assignment), were exposed to more than one variant in the window, or were first exposed to
the experiment before the phase started (in that order: each user counts once). The clean
users make the variants: a user converts on outcome type T with at least one T outcome on a
tagged impression in the window. Control is the variant named "control", else the first.

Sample ratio mismatch is tested per phase against that phase's weights, on the users
automatically assigned in the phase and exposed in the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.utils import timezone

from recsys_experiments.db import reading_cursor
from recsys_experiments.lib.errors import InvalidInput
from recsys_experiments.lib.guardrails import (
    OUTCOME_TYPES,
    SHARE_METRICS,
    check_guardrail,
    evaluate,
)
from recsys_experiments.lib.power import ALPHA, POWER, duration, number_from
from recsys_experiments.lib.statistics import (
    Sequential,
    compare_proportions,
    sample_ratio_mismatch,
)
from recsys_experiments.models import Experiment, ExperimentPhase
from telemetry.models import Metric
from telemetry.results.metrics import (
    conversion_names,
    cuped_days,
    experiment_metrics,
    metric_rows,
    primary_metric,
    variant_counts,
)
from telemetry.rollups import window_split
from telemetry.selectors import telemetry_health

EXCLUSIONS = ("manual", "multiple_variants", "before_phase")

# The window's impressions come from two sides (telemetry/rollups.py `window_split`): the
# clean rolled days wholly inside the window from rec_daily_user_rollups (`%(days)s`), the
# rest (edges, today, dirty days) raw from rec_impressions, one index range per interval
# (`%(raw_from)s`, `%(raw_to)s`). A day comes from one side only.
_RAW_TAGGED = """
raw_tagged as (
    select i.user_id, i.rec_request_id, i.media_item_id,
           i.request_context -> 'experiments' ->> %(key)s as variant
    from unnest(%(raw_from)s::timestamptz[], %(raw_to)s::timestamptz[]) as w(lo, hi)
    join rec_impressions as i on i.created_at >= w.lo and i.created_at < w.hi
    where i.request_context -> 'experiments' ? %(key)s
      and (%(users)s::uuid[] is null or i.user_id = any(%(users)s::uuid[]))
)"""

# The phase's users in the window, each classified: excluded (and why) or clean. `tagged`
# is per user and variant: impressions and the outcomes on them (per impression).
CLASSIFIED = (
    "with"  # noqa: S608 - constant SQL text joined to constant SQL text
    + _RAW_TAGGED
    + """,
tagged as (
    select t.user_id, t.variant, sum(t.impressions)::bigint as impressions,
           sum(t.likes)::bigint as likes, sum(t.dislikes)::bigint as dislikes,
           sum(t.watchlists)::bigint as watchlists, sum(t.ratings)::bigint as ratings,
           sum(t.rating_sum) as rating_sum, sum(t.detail_opens)::bigint as detail_opens
    from (
        select r.user_id, r.variant, count(*) as impressions,
               sum(o.likes) as likes, sum(o.dislikes) as dislikes,
               sum(o.watchlists) as watchlists, sum(o.ratings) as ratings,
               sum(o.rating_sum) as rating_sum, sum(o.detail_opens) as detail_opens
        from raw_tagged as r
        cross join lateral (
            select count(*) filter (where x.outcome_type = 'like') as likes,
                   count(*) filter (where x.outcome_type = 'dislike') as dislikes,
                   count(*) filter (where x.outcome_type = 'watchlist') as watchlists,
                   count(*) filter (where x.outcome_type = 'rating') as ratings,
                   sum(x.value) filter (where x.outcome_type = 'rating') as rating_sum,
                   count(*) filter (where x.outcome_type = 'detail_open') as detail_opens
            from rec_outcomes as x
            where x.user_id = r.user_id and x.rec_request_id = r.rec_request_id
              and x.media_item_id = r.media_item_id
        ) as o
        group by r.user_id, r.variant
        union all
        select u.user_id, u.variant, u.impressions, u.likes, u.dislikes, u.watchlists,
               u.ratings, u.rating_sum, u.detail_opens
        from rec_daily_user_rollups as u
        where u.experiment_key = %(key)s and u.day = any(%(days)s::date[])
          and u.day between %(first_day)s::date and %(last_day)s::date
          and u.impressions > 0
          and (%(users)s::uuid[] is null or u.user_id = any(%(users)s::uuid[]))
    ) as t
    group by t.user_id, t.variant
),
-- App-side exposures (rec_exposures) of the experiment in the window: an exposed user like
-- one with a tagged impression.
app_exposed as (
    select x.user_id, x.variant
    from unnest(%(raw_from)s::timestamptz[], %(raw_to)s::timestamptz[]) as w(lo, hi)
    join rec_exposures as x
      on x.experiment_id = %(experiment_id)s
     and x.occurred_at >= w.lo and x.occurred_at < w.hi
    where (%(users)s::uuid[] is null or x.user_id = any(%(users)s::uuid[]))
    union all
    select u.user_id, u.variant
    from rec_daily_user_rollups as u
    where u.experiment_key = %(key)s and u.day = any(%(days)s::date[]) and u.exposures > 0
      and u.day between %(first_day)s::date and %(last_day)s::date
      and (%(users)s::uuid[] is null or u.user_id = any(%(users)s::uuid[]))
),
exposed as (
    select t.user_id, min(t.variant) as variant, count(distinct t.variant) as variants
    from (select t.user_id, t.variant from tagged as t
          union all
          select x.user_id, x.variant from app_exposed as x) as t
    group by t.user_id
),
classified as (
    select u.user_id, u.variant, a.variant as assigned_variant,
           case
               when a.assignment_mode = 'manual' then 'manual'
               when u.variants > 1 then 'multiple_variants'
               when exists (
                   select 1 from rec_impressions as e
                   where e.user_id = u.user_id and e.created_at < %(phase_start)s
                     and e.request_context -> 'experiments' ? %(key)s
               ) or exists (
                   select 1 from rec_exposures as x
                   where x.user_id = u.user_id and x.experiment_id = %(experiment_id)s
                     and x.occurred_at < %(phase_start)s
               ) then 'before_phase'
           end as excluded,
           coalesce(
               a.assignment_mode = 'auto' and (
                   a.phase = %(phase)s
                   or (a.phase is null and a.assigned_at >= %(phase_start)s
                       and (%(phase_end)s::timestamptz is null
                            or a.assigned_at < %(phase_end)s::timestamptz))
               ),
               false
           ) as assigned_in_phase
    from exposed as u
    left join rec_user_experiment_assignments as a
           on a.experiment_id = %(experiment_id)s and a.user_id = u.user_id
)
"""
)

POPULATION = (
    CLASSIFIED  # noqa: S608 - constant SQL text joined to constant SQL text
    + """,
clean as (
    select t.*
    from tagged as t
    join classified as c on c.user_id = t.user_id and c.excluded is null
)
select 'exposure' as row, c.variant, null::text as outcome_type,
       coalesce(max(n.impressions), 0) as impressions, count(*) as users,
       null::float8 as mean_rating
from classified as c
left join (select t.variant, sum(t.impressions)::bigint as impressions from clean as t
           group by t.variant) as n
       on n.variant = c.variant
where c.excluded is null
group by c.variant
union all
select 'outcome', c.variant, k.outcome_type, null, count(*) filter (where k.events > 0),
       case when k.outcome_type = 'rating'
            then sum(c.rating_sum) / nullif(sum(c.ratings), 0) end
from clean as c
cross join lateral (values ('like', c.likes), ('dislike', c.dislikes),
                           ('watchlist', c.watchlists), ('rating', c.ratings),
                           ('detail_open', c.detail_opens)) as k(outcome_type, events)
group by c.variant, k.outcome_type
union all
select 'excluded', c.variant, c.excluded, null, count(*), null
from classified as c
where c.excluded is not null
group by c.variant, c.excluded
union all
select 'srm', c.assigned_variant, null, null, count(*), null
from classified as c
where c.assigned_in_phase
group by c.assigned_variant
union all
-- The clean population itself, one row per user (its id in the third column), for the
-- per-user metrics: the same classification, not computed a second time.
select 'member', c.variant, c.user_id::text, null, null, null
from classified as c
where c.excluded is null
"""
)

# The ranking provenance the deck recorded on the experiment's impressions in the window
# (request_context.ranking, docs/deck.md): which profile, version and final knobs served each
# variant. Impressions from before provenance was recorded group under nulls. Rolled days
# from rec_daily_ranking_rollups (no per-user rows: a user filter reads everything raw).
RANKING = (
    "with"  # noqa: S608 - constant SQL text joined to constant SQL text
    + _RAW_TAGGED.replace(
        "i.request_context -> 'experiments' ->> %(key)s as variant",
        "i.request_context -> 'experiments' ->> %(key)s as variant, i.request_context",
    )
    + """
select t.variant, t.profile, t.profile_id, t.version, t.knobs_hash,
       sum(t.impressions)::bigint as impressions
from (
    select r.variant,
           r.request_context -> 'ranking' ->> 'profile' as profile,
           r.request_context -> 'ranking' ->> 'profile_id' as profile_id,
           r.request_context -> 'ranking' ->> 'version' as version,
           r.request_context -> 'ranking' ->> 'knobs_hash' as knobs_hash,
           1 as impressions
    from raw_tagged as r
    union all
    select k.variant, k.profile, k.profile_id, k.version, k.knobs_hash, k.impressions
    from rec_daily_ranking_rollups as k
    where k.experiment_key = %(key)s and k.day = any(%(days)s::date[])
      and k.day between %(first_day)s::date and %(last_day)s::date
) as t
group by 1, 2, 3, 4, 5
order by 1, 6 desc, 2, 4, 5
"""
)


def _whole(value: str | None) -> int | None:
    """A provenance id or version as recorded (jsonb text): an int, or None if it is none."""
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _ranking(rows) -> list[dict]:
    return [
        {
            "variant": variant,
            "profile": profile,
            "profile_id": _whole(profile_id),
            "version": _whole(version),
            "knobs_hash": knobs_hash,
            "impressions": impressions,
        }
        for variant, profile, profile_id, version, knobs_hash, impressions in rows
    ]


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC, inside one phase."""

    start: datetime
    end: datetime

    def as_dict(self) -> dict:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


def control_of(experiment: Experiment) -> str:
    names = experiment.variant_names
    return "control" if "control" in names else names[0]


def parse_date(value, field: str) -> date | None:
    """An ISO date (YYYY-MM-DD) from a query parameter or option, or None when absent;
    InvalidInput naming `field` otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    text = str(value)
    if len(text) != 10 or not text.isascii():
        raise InvalidInput({field: ["must be a date as YYYY-MM-DD"]})
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput({field: ["must be a real date as YYYY-MM-DD"]}) from None


def parse_phase(value, field: str = "phase") -> int | None:
    """A phase number from a query parameter, or None when absent; InvalidInput naming
    `field` otherwise (isascii: str.isdigit() accepts digits int() refuses, such as '²')."""
    if value is None or value == "":
        return None
    text = str(value)
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 100_000:
        raise InvalidInput({field: ["must be a phase number (a whole number from 1)"]})
    return int(text)


MAX_MDE = 10.0


def parse_mde(value, field: str = "mde") -> float | None:
    """A relative minimum detectable effect (0.03 = 3%) from a query parameter or option, or
    None when absent; InvalidInput naming `field` otherwise."""
    if value is None or value == "":
        return None
    number = number_from(value)
    if number is None or not 0 < number <= MAX_MDE:
        reason = f"must be a relative effect above 0 and at most {MAX_MDE:g}, e.g. 0.05"
        raise InvalidInput({field: [reason]})
    return number


def sequential_mode(experiment: Experiment, sequential: bool | None = None) -> Sequential | None:
    """The inference the results use: the experiment's choice unless `sequential` overrides
    it; n* from settings RESULTS_SEQUENTIAL_TUNING."""
    chosen = experiment.sequential_testing if sequential is None else sequential
    return Sequential(float(settings.RESULTS_SEQUENTIAL_TUNING)) if chosen else None


POWER_METHOD = "fixed-horizon two-sided z-test"


def power_summary(
    primary: Metric | None, rows: list[dict], variants: list[dict], window: Window, mde: float
) -> dict:
    """For the primary metric: per non-control variant the MDE at the current sample (80%
    power, alpha 0.05 two-sided, fixed horizon) and the users and days to reach a relative
    MDE `mde` at the observed daily arrivals (clean exposed users per day of the window)."""
    users = sum(variant["exposed_users"] for variant in variants)
    elapsed = max(0.0, (window.end - window.start).total_seconds() / 86400)
    summary = {
        "metric": primary.key if primary else None,
        "method": POWER_METHOD,
        "alpha": ALPHA,
        "power": POWER,
        "target_mde_rel": mde,
        "exposed_users": users,
        "elapsed_days": elapsed,
        "daily_users": users / elapsed if elapsed > 0 else None,
        "comparisons": [],
    }
    if primary is None:
        return {**summary, "reason": "no primary metric"}
    for row in rows:
        if row["metric"] != primary.key:
            continue
        summary["comparisons"].append(
            duration(
                variant=row["variant"],
                std_error=row.get("std_error"),
                control_value=row["control_value"],
                users=users,
                elapsed_days=elapsed,
                target_mde_rel=mde,
            ).as_dict()
        )
    return summary


def experiment_phases(experiment: Experiment) -> list[dict]:
    """The experiment's phases, oldest first. An experiment written without the services (no
    phase rows) has one phase: its run with its current definition."""
    phases = [phase.as_dict() for phase in ExperimentPhase.objects.filter(experiment=experiment)]
    if phases or experiment.started_at is None:
        return phases
    return [
        {
            "number": 1,
            "started_at": experiment.started_at.isoformat(),
            "ended_at": experiment.ended_at.isoformat() if experiment.ended_at else None,
            # As ExperimentPhase.as_dict: the salt is not part of the results.
            **{k: v for k, v in experiment.phase_definition().items() if k != "salt"},
        }
    ]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def analysis_window(
    phase: dict | None, *, days=None, date_from=None, date_to=None, now=None
) -> Window:
    """The phase's run, narrowed to the last `days` UTC days ending at its end and to the
    UTC dates `date_from`..`date_to` (inclusive). Empty (start == end) when nothing is left."""
    if date_from is not None and date_to is not None and date_from > date_to:
        raise InvalidInput({"from": [f"must not be after to ({date_to.isoformat()})"]})
    now = now or timezone.now()
    if phase is None:
        return Window(now, now)
    start = datetime.fromisoformat(phase["started_at"])
    end = datetime.fromisoformat(phase["ended_at"]) if phase["ended_at"] else now
    if days is not None:
        last_day = (end - timedelta(microseconds=1)).astimezone(UTC).date()
        start = max(start, _midnight(last_day - timedelta(days=days - 1)))
    if date_from is not None:
        start = max(start, _midnight(date_from))
    if date_to is not None:
        end = min(end, _midnight(date_to + timedelta(days=1)))
    return Window(start, max(start, end))


def _select_phase(phases: list[dict], number) -> dict | None:
    if number is None:
        return phases[-1] if phases else None
    for phase in phases:
        if phase["number"] == number:
            return phase
    known = ", ".join(str(phase["number"]) for phase in phases) or "none yet"
    raise InvalidInput({"phase": [f"no phase {number} (phases: {known})"]})


def _population(
    experiment: Experiment, phase: dict | None, window: Window, user_ids, query: str = POPULATION
):
    if phase is None or window.start >= window.end:
        return []
    # A user filter reads raw (the ranking rollup has no per-user rows; few users anyway).
    split = window_split(window.start, window.end, rollups=user_ids is None)
    with reading_cursor() as cursor:
        cursor.execute(
            query,
            {
                **split.params(),
                "key": experiment.key,
                "experiment_id": experiment.pk,
                "start": window.start,
                "end": window.end,
                "phase": phase["number"],
                "phase_start": datetime.fromisoformat(phase["started_at"]),
                "phase_end": (
                    datetime.fromisoformat(phase["ended_at"]) if phase["ended_at"] else None
                ),
                "users": [str(u) for u in user_ids] if user_ids is not None else None,
            },
        )
        return cursor.fetchall()


def _variants(experiment: Experiment, rows) -> list[dict]:
    exposure = {v: (imp, users) for row, v, _, imp, users, _ in rows if row == "exposure"}
    converted = {(v, kind): users for row, v, kind, _, users, _ in rows if row == "outcome"}
    ratings = {v: mean for row, v, kind, _, _, mean in rows if kind == "rating"}
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


def _srm(phase: dict | None, rows) -> dict:
    weights = phase["weights"] if phase else []
    assigned = {v: users for row, v, _, _, users, _ in rows if row == "srm"}
    counts = [assigned.get(weight["name"], 0) for weight in weights]
    return {
        **sample_ratio_mismatch(counts, [weight["weight"] for weight in weights]),
        "phase": phase["number"] if phase else None,
        "users": dict(zip([weight["name"] for weight in weights], counts, strict=True)),
        "weights": {weight["name"]: weight["weight"] for weight in weights},
    }


def experiment_results(
    experiment: Experiment,
    *,
    phase: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    days: int | None = None,
    user_ids=None,
    now: datetime | None = None,
    correction: str = "holm",
    guardrails: list[dict] | None = None,
    sequential: bool | None = None,
    mde: float | None = None,
) -> dict:
    """Per-variant metrics of the clean population, comparisons with control, the excluded
    users, sample ratio mismatch of the phase and guardrails, for one phase (default the
    latest) over its window narrowed by `days`, `date_from` and `date_to`. `guardrails` are
    extra ones (a customer's guardrail file), judged beside the experiment's own: each result
    says its `source` ("experiment" or "file") and `guardrails_passed` covers both. The metric
    rows are always-valid when the experiment uses sequential testing (or `sequential` says
    so); `power` estimates the primary metric's MDE and the days to a relative MDE `mde`
    (default settings RESULTS_POWER_MDE)."""
    extra_guardrails = list(guardrails or [])
    for index, guardrail in enumerate(extra_guardrails):
        for name, reason in check_guardrail(guardrail):
            raise InvalidInput({f"guardrails[{index}]{'.' + name if name else ''}": [reason]})
    all_guardrails = [*experiment.guardrails, *extra_guardrails]
    mode = sequential_mode(experiment, sequential)
    target_mde = float(settings.RESULTS_POWER_MDE) if mde is None else mde
    phases = experiment_phases(experiment)
    selected = _select_phase(phases, phase)
    window = analysis_window(selected, days=days, date_from=date_from, date_to=date_to, now=now)
    rows = _population(experiment, selected, window, user_ids)
    variants = _variants(experiment, rows)
    excluded = dict.fromkeys(EXCLUSIONS, 0)
    manual = dict.fromkeys(experiment.variant_names, 0)
    for row, variant, reason, _, users, _ in rows:
        if row == "excluded":
            excluded[reason] += users
            if reason == "manual":
                manual[variant] = manual.get(variant, 0) + users
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
    window_days = max(1, min(366, (window.end - window.start).days + 1))
    health = (
        telemetry_health(
            days=window_days,
            until=(window.end - timedelta(microseconds=1)).astimezone(UTC).date(),
        )
        if any(g["metric"] in SHARE_METRICS for g in all_guardrails)
        else {}
    )
    population = {name: [] for name in experiment.variant_names}
    for row, variant, user_id, *_ in rows:
        if row == "member" and variant in population:
            population[variant].append(user_id)
    has_window = selected is not None and window.start < window.end
    metrics = experiment_metrics(experiment)
    primary = primary_metric(experiment)
    span = (window.start, window.end)
    # CUPED's pre-period ends at each user's first exposure in the phase.
    phase_start = datetime.fromisoformat(selected["started_at"]) if selected else None
    # A guardrail's metric is computed even when the experiment does not list it (its own
    # rows, kept out of the experiment's multiple-testing correction).
    listed = {metric.key for metric in metrics}
    extra = list(
        Metric.objects.filter(
            key__in={g["metric"] for g in all_guardrails} - listed - set(SHARE_METRICS)
        )
    )
    # The users' counts are read once for both sets of rows.
    counts = (
        variant_counts(
            experiment.key,
            population=population,
            window=span,
            pre_days=cuped_days(),
            phase_start=phase_start,
            conversions=conversion_names([*metrics, *extra]),
        )
        if has_window
        else None
    )

    def rows_of(chosen: list[Metric]) -> list[dict]:
        if not has_window or not chosen:
            return []
        return metric_rows(
            experiment,
            population,
            span,
            chosen,
            control,
            correction,
            phase_start=phase_start,
            sequential=mode,
            counts=counts,
        )

    metric_results = rows_of(metrics)
    guardrail_rows = metric_results + rows_of(extra)
    judged = [
        {**result, "source": source}
        for source, declared in (("experiment", experiment.guardrails), ("file", extra_guardrails))
        for result in evaluate(
            declared,
            control=control,
            variant_names=experiment.variant_names,
            rows=guardrail_rows,
            health=health,
        )
    ]
    return {
        "experiment": experiment.key,
        "days": days,
        "window": window.as_dict(),
        "phase": (
            {key: selected[key] for key in ("number", "started_at", "ended_at", "weights")}
            if selected
            else None
        ),
        "phases": phases,
        "control": control,
        "srm": _srm(selected, rows),
        "excluded": excluded,
        # The forced users' own row: per variant they were forced into.
        "manual": [{"variant": name, "users": users} for name, users in manual.items()],
        "variants": variants,
        "comparisons": comparisons,
        "primary_metric": primary.key if primary else None,
        "correction": correction,
        "inference": "sequential" if mode else "fixed",
        "sequential_tuning": mode.tuning if mode else None,
        "metrics": metric_results,
        "guardrails": judged,
        "guardrails_passed": all(result["passed"] for result in judged),
        "ranking": _ranking(_population(experiment, selected, window, user_ids, query=RANKING)),
        "power": power_summary(primary, metric_results, variants, window, target_mde),
    }
