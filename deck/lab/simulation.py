"""Simulation: synthetic users with known propensities drive the real deck function and the
real outcome path; the report is then set beside the truth.

Each simulated user draws, per outcome type, a per-impression propensity from a Beta
distribution whose mean is the segment's propensity (per segment when a fixture gives
segments) and whose concentration is `CONCENTRATION`, so users differ as real ones do. Every
impression their decks serve then gets each outcome type with that probability (a user may
like several items); users in a non-control variant get the true effect added to it (clipped
to [0, 1]). A planted effect `like=+0.05` is thus a per-impression effect, the quantity a
recommender changes, and the catalogue's per-impression ratio metric of that type (like ->
like_rate) estimates it: the truth rows set its lift, CI and p-value beside the truth.

Every random choice comes from one generator seeded with `spec.seed`: the experiment's id
and salt when it creates the experiment (drawn even when a snapshot gives them, so the rest
of the stream does not depend on where the definition came from), the catalogue it may
create, the run id, the users' ids and their behaviour. deck/lab/runs.py runs this in a fresh
scratch database (deck/lab/scratch.py), so the same seed always gives the identical report.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from deck.models import MediaItem
from deck.services import deck_build
from recsys_experiments.db_roles import END_USER_ROLE, acting_as
from recsys_experiments.lib.errors import IllegalTransition, InvalidInput
from recsys_experiments.lib.experiment_rules import clean_definition
from recsys_experiments.lib.guardrails import OUTCOME_TYPES
from recsys_experiments.models import Experiment, ExperimentPhase, ExperimentStatus
from recsys_experiments.services.assignments import assignment_assign
from telemetry.models import ExperimentMetric, Metric
from telemetry.results.analysis import control_of, experiment_results
from telemetry.results.report import report_lines
from telemetry.services import MAX_BATCH, outcomes_record

DEFAULT_PROPENSITIES = {
    "like": 0.30,
    "dislike": 0.25,
    "watchlist": 0.08,
    "rating": 0.12,
    "detail_open": 0.40,
}
DECK_SIZE = 10
# Beta(mean * CONCENTRATION, (1 - mean) * CONCENTRATION): per-user propensities around the
# segment's mean (for a mean of 0.30 the users' standard deviation is 0.14).
CONCENTRATION = 10.0
SIM_CATALOG_SIZE = 120


@dataclass
class Segment:
    name: str
    share: float
    propensities: dict[str, float]


@dataclass
class SimulationSpec:
    experiment: str
    users: int
    days: int = 1
    effects: dict[str, float] = field(default_factory=dict)
    seed: int = 1
    # {variant: share of its users who never get a deck}: a planted exposure imbalance.
    drop_exposures: dict[str, float] = field(default_factory=dict)
    segments: list[Segment] = field(
        default_factory=lambda: [Segment("default", 1.0, dict(DEFAULT_PROPENSITIES))]
    )
    # Where the users' segments and the catalogue came from (a load_fixture file), if any.
    fixture: str | None = None
    # Copy the other active live experiments into the scratch database too.
    with_live_experiments: bool = False
    # The ranking profile to run with (None: the live default). See deck/lab/runs.py,
    # `install_profile`: the hook where the live profile is copied in.
    profile: str | None = None
    # A customer guardrail file's guardrails for this experiment, judged beside its own.
    guardrails: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "experiment": self.experiment,
            "users": self.users,
            "days": self.days,
            "effects": self.effects,
            "seed": self.seed,
            "drop_exposures": self.drop_exposures,
            "segments": [segment.__dict__ for segment in self.segments],
            "fixture": self.fixture,
            "with_live_experiments": self.with_live_experiments,
            "profile": self.profile,
            "guardrails": self.guardrails,
        }


def parse_effects(texts: list[str]) -> dict[str, float]:
    """["like=+0.05", "dislike=-0.02"] -> {"like": 0.05, "dislike": -0.02}"""
    effects = {}
    for text in texts:
        kind, _, amount = text.partition("=")
        if kind not in OUTCOME_TYPES:
            raise InvalidInput({"effect": [f"{text!r}: the type must be one of {OUTCOME_TYPES}"]})
        try:
            effects[kind] = float(amount)
        except ValueError:
            raise InvalidInput({"effect": [f"{text!r}: expected TYPE=+0.05"]}) from None
        if not -1 < effects[kind] < 1:
            raise InvalidInput({"effect": [f"{text!r}: the effect must be between -1 and 1"]})
    return effects


def parse_drops(texts: list[str]) -> dict[str, float]:
    """["treatment=0.3"] -> {"treatment": 0.3}"""
    drops = {}
    for text in texts:
        variant, _, share = text.partition("=")
        try:
            drops[variant] = float(share)
        except ValueError:
            raise InvalidInput({f"--drop-exposures {text!r}": ["expected VARIANT=SHARE"]}) from None
        if not 0 <= drops[variant] <= 1:
            raise InvalidInput({f"--drop-exposures {text!r}": ["the share must be from 0 to 1"]})
    return drops


DEFINITION_KEYS = (
    "key",
    "description",
    "variants",
    "salt",
    "traffic",
    "namespace",
    "targeting",
    "guardrails",
)
# The simulated history starts this long ago; every installed experiment started then.
HISTORY = timedelta(days=60)


def seed_snapshot(key: str, rng: random.Random) -> dict:
    """The definition of an experiment that exists nowhere yet: two even variants, its salt
    and id from the seed (so that the same seed hashes the same users the same way)."""
    return {
        "key": key,
        "description": "Created by manage.py simulate",
        "variants": [
            {"name": "control", "weight": 0.5, "config": {}},
            {"name": "treatment", "weight": 0.5, "config": {}},
        ],
        "salt": f"{rng.getrandbits(64):016x}",
        "traffic": 1.0,
        "namespace": None,
        "targeting": {},
        "guardrails": [],
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "status": ExperimentStatus.DRAFT,
        "phase": None,
        "phases": [],
        "metrics": [],
    }


def _snapshot_part(snapshot: dict, name: str, kind: type, default):
    value = snapshot.get(name, default)
    if not isinstance(value, kind):
        raise InvalidInput({f"experiment {snapshot.get('key')!r}.{name}": ["has the wrong type"]})
    return value


def experiment_install(snapshot: dict) -> Experiment:
    """Recreate an experiment from its snapshot (telemetry.results.provenance
    .experiment_snapshot, or seed_snapshot) in the current database, active since HISTORY
    ago: its definition (validated as the services validate it), id, phases with their
    numbers (earlier ones closed within its first minute, the current one open) and metric
    links with the metrics' definitions. Meant for a scratch database."""
    if not isinstance(snapshot, dict):
        raise InvalidInput({"experiment": ["must be an object"]})
    if snapshot.get("status") == ExperimentStatus.ENDED:
        key = snapshot.get("key")
        raise IllegalTransition(f'experiment "{key}" has ended; simulate a running one')
    definition = clean_definition({name: snapshot.get(name) for name in DEFINITION_KEYS})
    try:
        pk = uuid.UUID(str(snapshot.get("id")))
    except ValueError:
        raise InvalidInput({f"experiment {definition['key']!r}.id": ["must be a UUID"]}) from None
    phases = _snapshot_part(snapshot, "phases", list, [])
    links = _snapshot_part(snapshot, "metrics", list, [])
    if Experiment.objects.filter(Q(key=definition["key"]) | Q(pk=pk)).exists():
        raise InvalidInput({"experiment": [f"{definition['key']!r} is given twice"]})
    started = timezone.now() - HISTORY
    namespace = definition["namespace"] or {}
    targeting = definition["targeting"]
    experiment = Experiment.objects.create(
        id=pk,
        key=definition["key"],
        description=definition["description"],
        variants=definition["variants"],
        salt=definition["salt"],
        traffic=definition["traffic"],
        namespace_name=namespace.get("name"),
        namespace_start=namespace.get("start"),
        namespace_end=namespace.get("end"),
        platform=targeting.get("platform"),
        min_app_version=targeting.get("min_app_version"),
        max_app_version=targeting.get("max_app_version"),
        guardrails=definition["guardrails"],
        status=ExperimentStatus.ACTIVE,
        started_at=started,
    )
    try:
        numbers = [int(phase["number"]) for phase in phases] or [1]
        closed = phases[:-1]
        for index, phase in enumerate(closed):
            ExperimentPhase.objects.create(
                experiment=experiment,
                number=numbers[index],
                started_at=started + timedelta(seconds=index),
                ended_at=started + timedelta(seconds=index + 1),
                weights=phase["weights"],
                traffic=float(phase["traffic"]),
                targeting=phase.get("targeting") or {},
                namespace=phase.get("namespace"),
                salt=str(phase["salt"]),
            )
        ExperimentPhase.objects.create(
            experiment=experiment,
            number=numbers[-1],
            started_at=started + timedelta(seconds=len(closed)),
            **experiment.phase_definition(),
        )
        for link in links:
            fields = dict(link["metric"])
            metric = Metric.objects.filter(key=fields.get("key")).first() or Metric()
            for name, value in fields.items():
                setattr(metric, name, value)
            metric.full_clean()
            metric.save()
            ExperimentMetric.objects.create(
                experiment=experiment, metric=metric, is_primary=bool(link.get("is_primary"))
            )
    except (KeyError, TypeError, ValueError, AttributeError, ValidationError) as error:
        raise InvalidInput(
            {f"experiment {definition['key']!r}": [f"bad phase or metric: {error}"]}
        ) from None
    return experiment


def _ensure_catalog(rng: random.Random) -> None:
    if MediaItem.objects.count() >= 50:
        return
    genres = ["drama", "comedy", "action", "thriller", "scifi", "romance"]
    MediaItem.objects.bulk_create(
        MediaItem(
            title=f"Simulated title {n}",
            genres=rng.sample(genres, k=2),
            year=2000 + n % 26,
            popularity=round(1000 / n, 3),
            external_id=f"sim-{n:05d}",
        )
        for n in range(1, SIM_CATALOG_SIZE + 1)
    )


def _fresh_run_id(rng: random.Random) -> str:
    """Eight hex digits from the generator that no earlier run in this database has used."""
    user_model = get_user_model()
    while True:
        run_id = f"{rng.getrandbits(32):08x}"
        if not user_model.objects.filter(username__startswith=f"sim_{run_id}_").exists():
            return run_id


def _create_users(run_id: str, spec: SimulationSpec, rng: random.Random) -> list[tuple]:
    """[(user, segment)] for fresh users named sim_<run>_<n>, their ids drawn from `rng`."""
    user_model = get_user_model()
    shares = [segment.share for segment in spec.segments]
    chosen = rng.choices(spec.segments, weights=shares, k=spec.users)
    users = [
        user_model(
            id=uuid.UUID(int=rng.getrandbits(128), version=4), username=f"sim_{run_id}_{n:05d}"
        )
        for n in range(spec.users)
    ]
    for user in users:
        user.set_unusable_password()
    user_model.objects.bulk_create(users, batch_size=1000)
    return list(zip(users, chosen, strict=True))


def user_propensities(segment: Segment, rng: random.Random) -> dict[str, float]:
    """Per outcome type, the user's per-impression propensity: Beta around the segment's mean."""
    drawn = {}
    for kind in OUTCOME_TYPES:
        mean = segment.propensities.get(kind, 0.0)
        if mean <= 0 or mean >= 1:
            drawn[kind] = min(max(mean, 0.0), 1.0)
        else:
            drawn[kind] = rng.betavariate(mean * CONCENTRATION, (1 - mean) * CONCENTRATION)
    return drawn


def rate_metrics() -> dict[str, str]:
    """{outcome type: key of its per-impression ratio metric in the catalogue} (like ->
    like_rate); the first key alphabetically when several count the same type."""
    found: dict[str, str] = {}
    for numerator, key in (
        Metric.objects.filter(
            kind="ratio", denominator="impression", value="count", numerator__in=OUTCOME_TYPES
        )
        .order_by("key")
        .values_list("numerator", "key")
    ):
        found.setdefault(numerator, key)
    return found


def _back_date(table: str, column_pairs: dict, ids_by_day: dict) -> None:
    with connection.cursor() as cursor:
        for moment, request_ids in ids_by_day.items():
            assignments = ", ".join(f"{column} = %s" for column in column_pairs)
            cursor.execute(
                f"update {table} set {assignments} where rec_request_id = any(%s::uuid[])",  # noqa: S608
                [moment] * len(column_pairs) + [request_ids],
            )


def run_simulation(
    spec: SimulationSpec,
    progress: Callable[[int, int], None] | None = None,
    *,
    snapshot: dict | None = None,
):
    """Drive the deck and outcome paths for `spec.users` new users in the current database
    (deck/lab/runs.py runs this inside a scratch database); return the results with the
    truth beside them. The experiment is installed from `snapshot` (the live one's), or
    from the seed."""
    if spec.users < 2:
        raise InvalidInput({"users": ["must be at least 2"]})
    if not 1 <= spec.days <= 60:
        raise InvalidInput({"days": ["must be from 1 to 60"]})
    rng = random.Random(spec.seed)
    # Drawn even when a snapshot is given: the rest of the run then draws the same numbers
    # whether the experiment came from the seed, the live database or a bundle.
    seeded = seed_snapshot(spec.experiment, rng)
    snapshot = snapshot or seeded
    with transaction.atomic():
        experiment = experiment_install(snapshot)
        _ensure_catalog(rng)
        run_id = _fresh_run_id(rng)
        people = _create_users(run_id, spec, rng)
    control = control_of(experiment)
    unknown = set(spec.drop_exposures) - set(experiment.variant_names)
    if unknown:
        raise InvalidInput({"drop_exposures": [f"no variant {', '.join(sorted(unknown))}"]})
    now = timezone.now()
    days = [
        min(
            datetime.combine((now - timedelta(days=back)).date(), datetime.min.time(), UTC)
            + timedelta(hours=12),
            now - timedelta(minutes=10),
        )
        for back in range(spec.days - 1, -1, -1)
    ]
    requests_by_day: dict = {moment: [] for moment in days}
    for done, (user, segment) in enumerate(people, start=1):
        with transaction.atomic(), acting_as(END_USER_ROLE, user.pk):
            variant = assignment_assign(experiment_key=experiment.key, user=user)
            if variant is None or rng.random() < spec.drop_exposures.get(variant, 0.0):
                continue
            served = []
            for moment in days:
                deck = deck_build(user=user, limit=DECK_SIZE, platform="ios", app_version="3.0")
                requests_by_day[moment].append(deck["rec_request_id"])
                served += [(deck["rec_request_id"], item, moment) for item in deck["items"]]
            if not served:
                continue
            propensities = user_propensities(segment, rng)
            if variant != control:
                propensities = {
                    kind: min(max(chance + spec.effects.get(kind, 0.0), 0.0), 1.0)
                    for kind, chance in propensities.items()
                }
            events = []
            for n, (request_id, item, moment) in enumerate(served):
                for kind in OUTCOME_TYPES:
                    if rng.random() >= propensities[kind]:
                        continue
                    event = {
                        "event_id": f"sim-{run_id}-{user.pk}-{n}-{kind}",
                        "rec_request_id": request_id,
                        "media_item_id": item["media_item_id"],
                        "outcome_type": kind,
                        "occurred_at": (moment + timedelta(minutes=5)).isoformat(),
                    }
                    if kind == "rating":
                        event["value"] = rng.choice((2.5, 3, 3.5, 4, 4.5, 5))
                    events.append(event)
            for start in range(0, len(events), MAX_BATCH):
                outcomes_record(user=user, outcomes=events[start : start + MAX_BATCH])
        if progress:
            progress(done, len(people))
    with transaction.atomic():
        _back_date("rec_impressions", {"created_at": None}, requests_by_day)
        _back_date(
            "rec_outcomes",
            {"occurred_at": None, "created_at": None},
            {moment + timedelta(minutes=5): ids for moment, ids in requests_by_day.items()},
        )
    results = experiment_results(
        experiment,
        days=spec.days,
        user_ids=[user.pk for user, _ in people],
        guardrails=spec.guardrails or None,
    )
    return {
        "run_id": run_id,
        "arguments": spec.as_dict(),
        "experiment": snapshot,
        "results": results,
        "truth": compare_with_truth(results, spec.effects, rate_metrics()),
    }


def compare_with_truth(
    results: dict, effects: dict[str, float], metrics: dict[str, str]
) -> list[dict]:
    """Per non-control variant and outcome type with a per-impression ratio metric (`metrics`:
    {outcome type: metric key}): the true per-impression effect beside the metric's absolute
    lift, CI and p-value, whether the CI covers the truth and whether p < 0.05. A planted
    effect whose type has no such metric gets a row with no estimate (covered None)."""
    kinds = {key: kind for kind, key in metrics.items()}
    rows = []
    for metric in results["metrics"]:
        kind = kinds.get(metric["metric"])
        if kind is None:
            continue
        true_lift = effects.get(kind, 0.0)
        low, high, p_value = metric["abs_ci_low"], metric["abs_ci_high"], metric["p_value"]
        rows.append(
            {
                "variant": metric["variant"],
                "outcome_type": kind,
                "metric": metric["metric"],
                "true_lift": true_lift,
                "estimated_lift": metric["abs_lift"],
                "ci_low": low,
                "ci_high": high,
                "p_value": p_value,
                "covered": None if low is None else low <= true_lift <= high,
                "significant": None if p_value is None else p_value < 0.05,
            }
        )
    variants = sorted({metric["variant"] for metric in results["metrics"]})
    for kind, true_lift in effects.items():
        if kind in metrics:
            continue
        rows += [
            {
                "variant": variant,
                "outcome_type": kind,
                "metric": None,
                "true_lift": true_lift,
                "estimated_lift": None,
                "ci_low": None,
                "ci_high": None,
                "p_value": None,
                "covered": None,
                "significant": None,
            }
            for variant in variants
        ]
    return rows


def truth_line(row: dict) -> str:
    """One truth row as the command prints it."""
    estimate = "—" if row["estimated_lift"] is None else f"{row['estimated_lift']:+.4f}"
    ci = "—" if row["ci_low"] is None else f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]"
    p_value = "—" if row["p_value"] is None else f"{row['p_value']:.4g}"
    return (
        f"truth {row['variant']}/{row['outcome_type']} ({row['metric'] or 'no ratio metric'}): "
        f"true {row['true_lift']:+.4f} per impression, estimated {estimate}, 95% CI {ci}, "
        f"p {p_value}, covered: {row['covered']}, significant: {row['significant']}"
    )


def _profile_line(profile: dict | None) -> str:
    if not profile:
        return "the built-in default knobs"
    return (
        f"{profile['name']} (live version {profile['version']}), knobs "
        f"{json.dumps(profile['knobs'], sort_keys=True)}"
    )


def summary_markdown(run: dict, code: dict | None = None) -> str:
    results = run["results"]
    lines = [
        f"# Simulation {run['run_id']}: {results['experiment']}",
        "",
        "```",
        json.dumps(run["arguments"], indent=2),
        "```",
        "",
        "## Truth versus estimate",
        "",
        "Per-impression effects against the per-impression ratio metric of each outcome type.",
        "",
        "| variant | outcome | true lift | metric | estimated lift | 95% CI | p-value "
        "| covered | significant |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in run["truth"]:
        ci = "—" if row["ci_low"] is None else f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]"
        estimate = "—" if row["estimated_lift"] is None else f"{row['estimated_lift']:+.4f}"
        p_value = "—" if row["p_value"] is None else f"{row['p_value']:.4g}"
        lines.append(
            f"| {row['variant']} | {row['outcome_type']} | {row['true_lift']:+.4f} "
            f"| {row['metric'] or '—'} | {estimate} | {ci} | {p_value} | {row['covered']} "
            f"| {row['significant']} |"
        )
    lines += ["", "## Report", "", "```", *report_lines(results), "```", ""]
    if code is not None:
        others = [other["key"] for other in run.get("others", [])]
        lines += [
            "## Provenance",
            "",
            f"- experiment: {run['experiment']['key']} (id {run['experiment']['id']}, "
            f"salt {run['experiment']['salt']}, phase "
            f"{(run['experiment'].get('phase') or {}).get('number', 1)})",
            f"- other experiments copied in: {', '.join(others) or 'none'}",
            f"- seed: {run['arguments']['seed']}, fixture: {run['arguments']['fixture']}",
            f"- ranking profile: {_profile_line(run.get('profile'))}",
            *[
                f"- served {row['variant']}: profile {row['profile']} v{row['version']}, "
                f"knobs {row['knobs_hash']} ({row['impressions']} impressions)"
                for row in run["results"].get("ranking", [])
            ],
            f"- code: commit {code['git_commit']} (dirty: {code['git_dirty']}), "
            f"package {code['package_version']}",
            f"- migrations: {json.dumps(code['migrations'], sort_keys=True)}",
            "- ran in a scratch database; reproduce with "
            "`manage.py simulate --from-bundle <this directory>`",
            "",
        ]
    return "\n".join(lines)
