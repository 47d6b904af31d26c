"""A/A harness (`manage.py aa_test`): many experiments with no effect, looked at once a day,
to measure how often the results cry wolf.

Design of one run (both paths): two even variants (control/treatment 50/50, a fresh salt);
M fresh users, each arriving on a day drawn uniformly from the D days and getting one deck of
DECK_SIZE items that day; per outcome type the user's per-impression propensity is drawn from
Beta around DEFAULT_PROPENSITIES (deck/lab/simulation.py's model: CONCENTRATION), and every
impression gets each outcome type with that probability (ratings valued 2.5..5); no variant
changes anything. At the end of each day d = 1..D the results are computed over days 1..d
(the users arrived by then): one look per day.

- Real path (`run_real`): everything goes through the real assignment, deck and outcome path
  in ONE scratch database (deck/lab/scratch.py) for the whole command; each run installs its
  own experiment (fresh key and salt) and fresh users, back-dates its impressions and outcomes
  as the simulation does, computes `experiment_results(date_from=day 1, date_to=day d)` fixed
  and sequential per look, then ends its experiment so the next run's users are not assigned
  to it.
- Fast path (`run_fast`): the same design in numpy. Assignment by the Python twin of the SQL
  hashing (`hash_points`, a vectorised recsys_experiments/lib/hashing.py `hash_point`, tested
  equal); per look the metric lifts come from the results' own `metric_lift`
  (telemetry/results/metrics.py) on the run's numpy columns (`fast_lift`), the sequential
  p-value and confidence sequence from `sequential_p_value` / `sequential_half_width` on the lift's
  standard error (exactly what `_lift` does with `sequential=`), SRM from
  `sample_ratio_mismatch`.

Summary (`summarise`): SRM false-alarm rate (final look, p < 0.001); per default catalogue
metric, the false-positive rate at 0.05 with a look per day stopping at the first
significant one (fixed-horizon p-values: "fixed", always-valid ones: "sequential"), the
coverage of the true lift 0 by the 95% interval at the final look (fixed and sequential), and
a Kolmogorov-Smirnov test of the final-look fixed p-values against uniform. A look whose lift
cannot be computed (no variance, no rating users) counts as not significant; coverage and the
KS test use the runs where the final look has an estimate.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from scipy import stats

from deck.lab.scratch import scratch_database
from deck.lab.simulation import (
    CONCENTRATION,
    DECK_SIZE,
    DEFAULT_PROPENSITIES,
    SimulationSpec,
    _back_date,
    _create_users,
    _ensure_catalog,
    _fresh_run_id,
    experiment_install,
    seed_snapshot,
    user_propensities,
)
from deck.services import deck_build
from recsys_experiments.db_roles import END_USER_ROLE, acting_as
from recsys_experiments.lib.constants import (
    CATALOGUE_METRICS,
    MEAN,
    OUTCOME_TYPES,
)
from recsys_experiments.lib.errors import InvalidInput
from recsys_experiments.lib.statistics import (
    SRM_ALPHA,
    Lift,
    sample_ratio_mismatch,
    sequential_half_width,
    sequential_p_value,
)
from recsys_experiments.models import Experiment, ExperimentStatus
from recsys_experiments.services.assignments import assignment_assign
from telemetry.models import Metric
from telemetry.results.analysis import experiment_results
from telemetry.results.metrics import Arm, metric_lift, per_user_values
from telemetry.results.provenance import bundle_write, code_version
from telemetry.services import MAX_BATCH, outcomes_record

ALPHA = 0.05
RATING_VALUES = (2.5, 3.0, 3.5, 4.0, 4.5, 5.0)
# Ranges of the flags: (fast path, real path).
LIMITS = {
    "runs": ((1, 20_000), (1, 200)),
    "users": ((4, 100_000), (4, 5_000)),
    "days": ((1, 60), (1, 30)),
}
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class AASpec:
    runs: int
    users: int
    days: int
    seed: int = 1
    fast: bool = False

    @property
    def mode(self) -> str:
        return "fast" if self.fast else "real"

    def as_dict(self) -> dict:
        return {
            "runs": self.runs,
            "users": self.users,
            "days": self.days,
            "seed": self.seed,
            "mode": self.mode,
        }


def _whole(value, name: str) -> int:
    """An int, or the text of one (the command's flags: ASCII digits, at most 20)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput({f"--{name}": ["must be a whole number"]})
    return value


def aa_spec(*, runs, users, days, seed=1, fast=False) -> AASpec:
    """The spec from the command's flags (ints or their text); InvalidInput naming the flag
    when one is not a whole number or out of range."""
    values = {"runs": runs, "users": users, "days": days}
    for name, value in values.items():
        values[name] = value = _whole(value, name)
        low, high = LIMITS[name][0 if fast else 1]
        if not low <= value <= high:
            path = "--fast" if fast else "the real path (without --fast)"
            raise InvalidInput({f"--{name}": [f"must be from {low} to {high:,} with {path}"]})
    seed = _whole(seed, "seed")
    if not 0 <= seed <= MAX_SEED:
        raise InvalidInput({"--seed": [f"must be from 0 to {MAX_SEED}"]})
    return AASpec(**values, seed=seed, fast=bool(fast))


@dataclass(frozen=True)
class Look:
    """One metric at one look: fixed-horizon and always-valid p-values and 95% intervals of
    the absolute lift (None when the lift cannot be computed)."""

    p_fixed: float | None
    p_sequential: float | None
    fixed_ci: tuple[float, float] | None
    sequential_ci: tuple[float, float] | None

    @staticmethod
    def from_rows(fixed: dict, sequential: dict) -> Look:
        """From the fixed and the sequential row of one metric (experiment_results)."""

        def ci(row):
            low, high = row["abs_ci_low"], row["abs_ci_high"]
            return None if low is None or high is None or row["p_value"] is None else (low, high)

        return Look(fixed["p_value"], sequential["p_value"], ci(fixed), ci(sequential))


@dataclass
class RunResult:
    srm_p: float | None
    srm_flagged: bool
    looks: dict[str, list[Look]] = field(default_factory=dict)


# --- fast path: the statistics -----------------------------------------------------------------


@dataclass(frozen=True)
class MetricDefinition:
    """A catalogue metric's definition, apart from its database row: the fields
    telemetry/results/metrics.py `metric_lift` reads."""

    key: str
    kind: str
    numerator_key: str
    denominator_key: str | None
    value: str

    @staticmethod
    def of(metric: Metric) -> MetricDefinition:
        return MetricDefinition(
            metric.key, metric.kind, metric.numerator_key, metric.denominator_key, metric.value
        )


def fast_lift(metric: MetricDefinition, users: Arm, control: Arm) -> tuple[Lift, int]:
    """The results' own `metric_lift` (fixed horizon) on the run's columns, and the users the
    lift is on (its confidence sequence's n: for a mean of values, those with a value)."""
    lift = metric_lift(metric, users, control)
    if metric.kind == MEAN:
        return lift, len(per_user_values(metric, users)) + len(per_user_values(metric, control))
    return lift, len(users) + len(control)


def look_of(lift: Lift, users: int, tuning: float) -> Look:
    """The fixed look from the lift, and the always-valid one from the same estimate and
    standard error on `users` users in all (lib/statistics.py `_lift` with `sequential=`)."""
    if lift.p_value is None or lift.abs_ci_low is None or not lift.std_error:
        return Look(None, None, None, None)
    z = lift.abs_lift / lift.std_error
    p_sequential = float(sequential_p_value(z, users, tuning=tuning))
    width = float(sequential_half_width(lift.std_error, users, tuning=tuning))
    return Look(
        lift.p_value,
        p_sequential,
        (lift.abs_ci_low, lift.abs_ci_high),
        (lift.abs_lift - width, lift.abs_lift + width),
    )


# --- fast path: the Python twin of assignment ----------------------------------------------------

FNV_OFFSET_BASIS = 2166136261
FNV_PRIME = 16777619
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _fnv(columns: np.ndarray, value: np.ndarray | None = None, mask=None) -> np.ndarray:
    """32-bit FNV-1a of each row of a (n, length) uint8 array (lib/hashing.py `fnv1a32`)."""
    if value is None:
        value = np.full(columns.shape[0], FNV_OFFSET_BASIS, dtype=np.uint64)
    for j in range(columns.shape[1]):
        step = ((value ^ columns[:, j]) * FNV_PRIME) & 0xFFFFFFFF
        value = step if mask is None else np.where(mask[:, j], step, value)
    return value


def uuid_texts(raw: np.ndarray) -> np.ndarray:
    """(n, 16) random bytes -> (n, 36) uint8: lower-case hyphenated version-4 uuid text."""
    raw = raw.copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    nibbles = np.empty((raw.shape[0], 32), dtype=np.uint8)
    nibbles[:, 0::2], nibbles[:, 1::2] = raw >> 4, raw & 0x0F
    text = HEX[nibbles]
    hyphen = np.full((raw.shape[0], 1), ord("-"), dtype=np.uint8)
    return np.hstack([text[:, :8], hyphen, text[:, 8:12], hyphen, text[:, 12:16], hyphen,
                      text[:, 16:20], hyphen, text[:, 20:]])  # fmt: skip


def hash_points(salt: str, user_ids: np.ndarray) -> np.ndarray:
    """lib/hashing.py `hash_point(salt, user_id, 2)` for every row of `user_ids` ((n, k)
    uint8 ASCII text): fnv(str(fnv(salt + id))) % 10000 / 10000."""
    prefix = np.frombuffer(salt.encode("ascii"), dtype=np.uint8)
    first = _fnv(np.hstack([np.broadcast_to(prefix, (len(user_ids), len(prefix))), user_ids]))
    # str(first): its decimal digits, most significant first (1 to 10 of them).
    digits = 1 + sum((first >= np.uint64(10**k)).astype(np.int64) for k in range(1, 10))
    columns = np.zeros((len(first), 10), dtype=np.uint8)
    mask = np.zeros((len(first), 10), dtype=bool)
    for j in range(10):
        place = np.clip(digits - 1 - j, 0, None).astype(np.uint64)
        columns[:, j] = ord("0") + (first // np.uint64(10) ** place) % np.uint64(10)
        mask[:, j] = j < digits
    second = _fnv(columns, mask=mask)
    return (second % 10000).astype(float) / 10000


def _propensities(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """simulation.py `user_propensities` for n users: Beta around each type's mean."""
    drawn = {}
    for kind in OUTCOME_TYPES:
        mean = DEFAULT_PROPENSITIES.get(kind, 0.0)
        if mean <= 0 or mean >= 1:
            drawn[kind] = np.full(n, min(max(mean, 0.0), 1.0))
        else:
            drawn[kind] = rng.beta(mean * CONCENTRATION, (1 - mean) * CONCENTRATION, n)
    return drawn


def fast_users(
    rng: np.random.Generator, users: int, days: int
) -> tuple[np.ndarray, np.ndarray, Arm]:
    """One run's users: (treatment flag by hashed assignment, arrival day 0..days-1, counts)."""
    salt = rng.bytes(8).hex()
    ids = uuid_texts(np.frombuffer(rng.bytes(16 * users), dtype=np.uint8).reshape(users, 16))
    treatment = hash_points(salt, ids) >= 0.5  # bucket_ranges(2): [0, .5) control, [.5, 1)
    arrival = rng.integers(0, days, users)
    chances = _propensities(rng, users)
    events = {kind: rng.binomial(DECK_SIZE, chances[kind]) for kind in OUTCOME_TYPES}
    sums = {kind: np.zeros(users) for kind in OUTCOME_TYPES}
    ratings = events["rating"]
    drawn = rng.choice(np.asarray(RATING_VALUES), int(ratings.sum()))
    sums["rating"] = np.bincount(np.repeat(np.arange(users), ratings), drawn, minlength=users)
    impressions = np.full(users, DECK_SIZE, dtype=np.int64)
    return treatment, arrival, Arm(range(users), impressions, events, sums)


def fast_run(
    rng: np.random.Generator, spec: AASpec, metrics: list[MetricDefinition], tuning: float
) -> RunResult:
    treatment, arrival, counts = fast_users(rng, spec.users, spec.days)
    result = RunResult(None, False, {metric.key: [] for metric in metrics})
    for day in range(spec.days):
        present = arrival <= day
        users, control = counts.subset(present & treatment), counts.subset(present & ~treatment)
        for metric in metrics:
            lift, n = fast_lift(metric, users, control)
            result.looks[metric.key].append(look_of(lift, n, tuning))
        if day == spec.days - 1:
            srm = sample_ratio_mismatch([len(control), len(users)], [0.5, 0.5])
            result.srm_p, result.srm_flagged = srm["p_value"], srm["flagged"]
    return result


def default_metrics() -> list[MetricDefinition]:
    """The default catalogue metrics (lib/constants.py CATALOGUE_METRICS) as defined in the
    current database's catalogue, in the catalogue's order."""
    found = {m.key: m for m in Metric.objects.filter(key__in=CATALOGUE_METRICS)}
    return [MetricDefinition.of(found[key]) for key in CATALOGUE_METRICS if key in found]


def sequential_tuning() -> float:
    return float(settings.RESULTS_SEQUENTIAL_TUNING)


def run_fast(spec: AASpec, progress: Callable[[int, int], None] | None = None) -> list[RunResult]:
    rng = np.random.default_rng(spec.seed)
    metrics, tuning = default_metrics(), sequential_tuning()
    results = []
    for index in range(spec.runs):
        results.append(fast_run(rng, spec, metrics, tuning))
        if progress:
            progress(index + 1, spec.runs)
    return results


# --- real path -----------------------------------------------------------------------------------


def _days(count: int, now: datetime) -> list[datetime]:
    """Noon (UTC) of each of the last `count` days, the last one at most now - 10 minutes
    (as the simulation's days)."""
    return [
        min(
            datetime.combine((now - timedelta(days=back)).date(), datetime.min.time(), UTC)
            + timedelta(hours=12),
            now - timedelta(minutes=10),
        )
        for back in range(count - 1, -1, -1)
    ]


def real_run(index: int, spec: AASpec, rng: random.Random, now: datetime) -> RunResult:
    """One A/A run through the real paths in the current (scratch) database."""
    key = f"aa_test_{index + 1:05d}"
    snapshot = seed_snapshot(key, rng)
    snapshot["description"] = "Created by manage.py aa_test"
    simulation = SimulationSpec(experiment=key, users=spec.users, days=spec.days, seed=spec.seed)
    with transaction.atomic():
        experiment = experiment_install(snapshot)
        _ensure_catalog(rng)
        run_id = _fresh_run_id(rng)
        people = _create_users(run_id, simulation, rng)
    moments = _days(spec.days, now)
    requests_by_day: dict = {moment: [] for moment in moments}
    for user, segment in people:
        moment = moments[rng.randrange(spec.days)]
        with transaction.atomic(), acting_as(END_USER_ROLE, user.pk):
            if assignment_assign(experiment_key=key, user=user) is None:
                continue
            deck = deck_build(user=user, limit=DECK_SIZE, platform="ios", app_version="3.0")
            requests_by_day[moment].append(deck["rec_request_id"])
            chances = user_propensities(segment, rng)
            events = []
            for n, item in enumerate(deck["items"]):
                for kind in OUTCOME_TYPES:
                    if rng.random() >= chances[kind]:
                        continue
                    event = {
                        "event_id": f"aa-{run_id}-{user.pk}-{n}-{kind}",
                        "rec_request_id": deck["rec_request_id"],
                        "media_item_id": item["media_item_id"],
                        "outcome_type": kind,
                        "occurred_at": (moment + timedelta(minutes=5)).isoformat(),
                    }
                    if kind == "rating":
                        event["value"] = rng.choice(RATING_VALUES)
                    events.append(event)
            for start in range(0, len(events), MAX_BATCH):
                outcomes_record(user=user, outcomes=events[start : start + MAX_BATCH])
    with transaction.atomic():
        _back_date("rec_impressions", {"created_at": None}, requests_by_day)
        _back_date(
            "rec_outcomes",
            {"occurred_at": None, "created_at": None},
            {moment + timedelta(minutes=5): ids for moment, ids in requests_by_day.items()},
        )
    ids = [user.pk for user, _ in people]
    result = RunResult(None, False, {key: [] for key in CATALOGUE_METRICS})
    for day in range(spec.days):
        window = {"date_from": moments[0].date(), "date_to": moments[day].date()}
        fixed, sequential = (
            experiment_results(experiment, **window, user_ids=ids, now=now, sequential=mode)
            for mode in (False, True)
        )
        rows = {row["metric"]: row for row in sequential["metrics"]}
        for row in fixed["metrics"]:
            if row["metric"] in result.looks:
                result.looks[row["metric"]].append(Look.from_rows(row, rows[row["metric"]]))
        if day == spec.days - 1:
            result.srm_p, result.srm_flagged = fixed["srm"]["p_value"], fixed["srm"]["flagged"]
    # Ended: the next run's users are not assigned to this experiment.
    Experiment.objects.filter(pk=experiment.pk).update(
        status=ExperimentStatus.ENDED, ended_at=timezone.now()
    )
    result.looks = {key: looks for key, looks in result.looks.items() if looks}
    return result


def run_real(
    spec: AASpec, progress: Callable[[int, int], None] | None = None, *, keep: bool = False
) -> list[RunResult]:
    """Every run in one scratch database (dropped afterwards unless `keep`)."""
    rng = random.Random(spec.seed)
    results = []
    with scratch_database(keep=keep):
        now = timezone.now()
        for index in range(spec.runs):
            results.append(real_run(index, spec, rng, now))
            if progress:
                progress(index + 1, spec.runs)
    return results


# --- the summary ---------------------------------------------------------------------------------


def _rate(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _covers(ci: tuple[float, float] | None) -> bool:
    return ci[0] <= 0 <= ci[1]


def first_significant(looks: list[Look], attribute: str) -> int | None:
    """The first look (1-based) whose p-value is below ALPHA, or None."""
    for day, look in enumerate(looks, start=1):
        p_value = getattr(look, attribute)
        if p_value is not None and p_value < ALPHA:
            return day
    return None


def metric_summary(looks_per_run: list[list[Look]]) -> dict:
    finals = [looks[-1] for looks in looks_per_run]
    estimated = [look for look in finals if look.fixed_ci is not None]
    p_values = [look.p_fixed for look in estimated]
    return {
        "false_positive_rate": {
            "fixed": _rate([first_significant(ls, "p_fixed") is not None for ls in looks_per_run]),
            "sequential": _rate(
                [first_significant(ls, "p_sequential") is not None for ls in looks_per_run]
            ),
        },
        "coverage": _rate([_covers(look.fixed_ci) for look in estimated]),
        "sequential_coverage": _rate([_covers(look.sequential_ci) for look in estimated]),
        "ks_p_value": float(stats.kstest(p_values, "uniform").pvalue) if p_values else None,
    }


def summarise(spec: AASpec, results: list[RunResult]) -> dict:
    """The JSON summary (docs/recsys-experiments.md, "A/A harness")."""
    keys = [key for key in CATALOGUE_METRICS if any(key in r.looks for r in results)]
    return {
        **spec.as_dict(),
        "srm_false_alarm_rate": _rate([r.srm_flagged for r in results]),
        "metrics": {
            key: metric_summary([r.looks[key] for r in results if key in r.looks]) for key in keys
        },
    }


def details(results: list[RunResult]) -> dict:
    """Per metric, beyond the JSON summary: the fixed test's false-positive rate when looked
    at once (the final look only) and the runs whose final look has an estimate."""
    out = {}
    for key in CATALOGUE_METRICS:
        finals = [r.looks[key][-1] for r in results if key in r.looks]
        if finals:
            out[key] = {
                "final_look_fixed": _rate(
                    [look.p_fixed is not None and look.p_fixed < ALPHA for look in finals]
                ),
                "estimated_runs": sum(look.fixed_ci is not None for look in finals),
            }
    return out


def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def summary_table(summary: dict, extra: dict) -> list[str]:
    """The Markdown table of the summary (also the command's text output)."""
    lines = [
        "| metric | FPR fixed (daily peeking) | FPR fixed (final look only) | FPR sequential "
        "| coverage fixed | coverage sequential | KS p-value |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, row in summary["metrics"].items():
        rates = row["false_positive_rate"]
        lines.append(
            f"| {key} | {_number(rates['fixed'])} | {_number(extra[key]['final_look_fixed'])} "
            f"| {_number(rates['sequential'])} | {_number(row['coverage'])} "
            f"| {_number(row['sequential_coverage'])} | {_number(row['ks_p_value'])} |"
        )
    return lines


def headline(summary: dict, tuning: float) -> str:
    return (
        f"A/A harness ({summary['mode']} path): {summary['runs']} runs x {summary['users']} "
        f"users x {summary['days']} days, seed {summary['seed']}, one look per day, alpha "
        f"{ALPHA}, sequential n* {tuning:g}. SRM false alarms (p < {SRM_ALPHA}): "
        f"{_number(summary['srm_false_alarm_rate'])}"
    )


def p_values_csv(results: list[RunResult]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "run",
            "metric",
            "final_p_fixed",
            "final_p_sequential",
            "first_significant_look_fixed",
            "first_significant_look_sequential",
            "srm_p_value",
        ]
    )
    for index, result in enumerate(results, start=1):
        for key, looks in result.looks.items():
            final = looks[-1]
            writer.writerow(
                [
                    index,
                    key,
                    "" if final.p_fixed is None else repr(final.p_fixed),
                    "" if final.p_sequential is None else repr(final.p_sequential),
                    first_significant(looks, "p_fixed") or "",
                    first_significant(looks, "p_sequential") or "",
                    "" if result.srm_p is None else repr(result.srm_p),
                ]
            )
    return out.getvalue()


def bundle_name(spec: AASpec) -> str:
    return f"aa-{spec.mode}-seed{spec.seed}-{spec.runs}x{spec.users}x{spec.days}"


def write_aa_bundle(spec: AASpec, results: list[RunResult], summary: dict, directory) -> Path:
    """<directory>/aa-<mode>-seed<S>-<N>x<M>x<D>/: arguments, code version, summary JSON,
    the Markdown table and the per-run p-values."""
    tuning = sequential_tuning()
    extra = details(results)
    markdown = "\n".join(
        [
            f"# A/A harness, {spec.mode} path",
            "",
            headline(summary, tuning),
            "",
            *summary_table(summary, extra),
            "",
            "Reproduce: `manage.py aa_test "
            + f"--runs {spec.runs} --users {spec.users} --days {spec.days} --seed {spec.seed}"
            + (" --fast" if spec.fast else "")
            + "`",
            "",
        ]
    )
    return bundle_write(
        Path(directory) / bundle_name(spec),
        {
            "arguments.json": {**spec.as_dict(), "sequential_tuning": tuning, "alpha": ALPHA},
            "code.json": code_version(),
            "summary.json": summary,
            "details.json": extra,
            "summary.md": markdown,
            "p_values.csv": p_values_csv(results),
        },
    )
