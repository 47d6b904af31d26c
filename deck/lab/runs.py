"""Simulation runs as `manage.py simulate` asks for them: one run from its flags, a batch
file (a YAML list of runs, each with optional expectations) with a pass/fail summary, or a
run reproduced from a report bundle.

Every run happens in a scratch database of its own (deck/lab/scratch.py), never in the live
one: what a run needs from the live database (the experiment's definition and, with
`with_live_experiments`, the other active experiments') is read first and recreated there.

Bad input raises a domain error whose message is the command's one error line."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml
from django.db import transaction

from deck.lab.fixtures import load_fixture, read_fixture, segments_from_fixture
from deck.lab.scratch import scratch_database
from deck.lab.simulation import (
    Segment,
    SimulationSpec,
    experiment_install,
    parse_drops,
    parse_effects,
    run_simulation,
    summary_markdown,
)
from deck.models import RankingProfile
from deck.profiles import ranking_profile_definition, ranking_profile_get, ranking_profile_install
from recsys_experiments.lib.errors import DomainError, IllegalTransition, InvalidInput
from recsys_experiments.lib.guardrails import check_guardrail
from recsys_experiments.models import Experiment, ExperimentStatus
from telemetry.results.provenance import (
    bundle_json,
    bundle_read,
    bundle_write,
    code_version,
    experiment_snapshot,
)

FIXTURE_FILE_RE = re.compile(r"\Afixture\.(json|ya?ml)\Z")


def simulation_spec(
    *,
    experiment: str,
    users: int = 1000,
    days: int = 1,
    effect: Sequence[str] = (),
    seed: int = 1,
    drop_exposures: Sequence[str] = (),
    fixture: str | None = None,
    with_live_experiments: bool = False,
    profile: str | None = None,
    guardrails: Sequence[dict] = (),
) -> SimulationSpec:
    """The spec from the command's flags (`--effect like=+0.05`, `--drop-exposures t=0.3`)."""
    spec = SimulationSpec(
        experiment=experiment,
        users=users,
        days=days,
        effects=parse_effects(list(effect)),
        seed=seed,
        drop_exposures=parse_drops(list(drop_exposures)),
        fixture=fixture,
        with_live_experiments=with_live_experiments,
        profile=profile,
        guardrails=list(guardrails),
    )
    if fixture:
        spec.segments = segments_from_fixture(Path(fixture))
    return spec


def live_snapshots(key: str, *, with_live_experiments: bool) -> tuple[dict | None, list[dict]]:
    """From the live database: the experiment's snapshot (None when the key is not there)
    and, when asked, those of the other active experiments (by key)."""
    experiment = Experiment.objects.filter(key=key).first()
    if experiment is not None and experiment.status == ExperimentStatus.ENDED:
        raise IllegalTransition(f'experiment "{key}" has ended; simulate a running one')
    others = []
    if with_live_experiments:
        active = Experiment.objects.filter(status=ExperimentStatus.ACTIVE).exclude(key=key)
        others = [experiment_snapshot(other) for other in active.order_by("key")]
    return (experiment_snapshot(experiment) if experiment else None), others


def live_profile(name: str | None) -> dict | None:
    """The definition of ranking profile `name` read from the live database (None: the live
    default, if there is one), to be recreated in the scratch database by `install_profile`."""
    if name is None:
        default = RankingProfile.objects.filter(is_default=True).first()
        return ranking_profile_definition(default) if default else None
    return ranking_profile_definition(ranking_profile_get(name=name))


def install_profile(definition: dict | None) -> None:
    """Copy a profile into the scratch database and make it the default there. Runs inside
    the scratch database, before any experiment or user exists."""
    if definition is not None:
        ranking_profile_install(definition, as_default=True)


def simulate_in_scratch(
    spec: SimulationSpec,
    *,
    snapshot: dict | None,
    others: list[dict],
    fixture_path: Path | None = None,
    profile: dict | None = None,
    keep: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """One run in a fresh scratch database: the fixture loaded, the profile and the other
    experiments installed, then the simulation. The run records the copied experiments and,
    with `keep`, the name of the database left behind."""
    fixture = read_fixture(fixture_path) if fixture_path else None
    with scratch_database(keep=keep) as scratch:
        if fixture is not None:
            load_fixture(fixture)
        install_profile(profile)
        with transaction.atomic():
            for other in others:
                experiment_install(other)
        run = run_simulation(spec, progress, snapshot=snapshot)
    run["others"] = others
    run["profile"] = profile
    run["scratch_database"] = scratch.name if keep else None
    return run


def write_bundle(run: dict, directory: Path, fixture_path: Path | None = None) -> Path:
    """<directory>/<run_id>/: the report bundle of a run (docs/recsys-experiments.md)."""
    code = code_version()
    files = {
        "arguments.json": run["arguments"],
        "experiment.json": run["experiment"],
        "experiments.json": run["others"],
        "profile.json": run["profile"],
        "code.json": code,
        "results.json": {"results": run["results"], "truth": run["truth"]},
        "summary.md": summary_markdown(run, code),
    }
    if fixture_path is not None:
        files[f"fixture{fixture_path.suffix if fixture_path.suffix == '.json' else '.yaml'}"] = (
            fixture_path.read_bytes()
        )
    return bundle_write(Path(directory) / run["run_id"], files)


def simulate_once(
    *,
    report_dir: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    keep: bool = False,
    **flags,
) -> tuple[dict, Path | None]:
    """Run one simulation from the command's flags (those of `simulation_spec`) in a
    scratch database; with `report_dir`, write its bundle there. Returns the run and the
    bundle's directory (or None)."""
    spec = simulation_spec(**flags)
    snapshot, others = live_snapshots(
        spec.experiment, with_live_experiments=spec.with_live_experiments
    )
    profile = live_profile(spec.profile)
    fixture_path = Path(spec.fixture) if spec.fixture else None
    run = simulate_in_scratch(
        spec,
        snapshot=snapshot,
        others=others,
        fixture_path=fixture_path,
        profile=profile,
        keep=keep,
        progress=progress,
    )
    bundle = write_bundle(run, Path(report_dir), fixture_path) if report_dir else None
    return run, bundle


def _argument(arguments: dict, name: str, kinds, check=lambda _value: True):
    value = arguments.get(name)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise InvalidInput({f"arguments.json.{name}": ["missing or of the wrong type"]})
    if not check(value):
        raise InvalidInput({f"arguments.json.{name}": ["out of range"]})
    return value


def _recorded_guardrails(guardrails) -> list[dict]:
    if not isinstance(guardrails, list):
        raise InvalidInput({"arguments.json.guardrails": ["must be a list of guardrails"]})
    for index, guardrail in enumerate(guardrails):
        for field_name, reason in check_guardrail(guardrail):
            path = f"arguments.json.guardrails[{index}]" + (f".{field_name}" if field_name else "")
            raise InvalidInput({path: [reason]})
    return guardrails


def spec_from_arguments(arguments) -> SimulationSpec:
    """The spec recorded in a bundle's arguments.json, checked as the flags are."""
    if not isinstance(arguments, dict):
        raise InvalidInput({"arguments.json": ["must be an object"]})
    segments = []
    for index, segment in enumerate(_argument(arguments, "segments", (list,))):
        if not (
            isinstance(segment, dict)
            and isinstance(segment.get("name"), str)
            and isinstance(segment.get("share"), int | float)
            and isinstance(segment.get("propensities"), dict)
            and all(isinstance(v, int | float) for v in segment["propensities"].values())
        ):
            raise InvalidInput({f"arguments.json.segments[{index}]": ["not a segment"]})
        segments.append(Segment(segment["name"], segment["share"], segment["propensities"]))
    if not segments:
        raise InvalidInput({"arguments.json.segments": ["must list at least one segment"]})
    effects = _argument(arguments, "effects", (dict,))
    drops = _argument(arguments, "drop_exposures", (dict,))
    spec = SimulationSpec(
        experiment=_argument(arguments, "experiment", (str,)),
        users=_argument(arguments, "users", (int,)),
        days=_argument(arguments, "days", (int,)),
        effects=parse_effects([f"{kind}={value}" for kind, value in effects.items()]),
        seed=_argument(arguments, "seed", (int,)),
        drop_exposures=parse_drops([f"{name}={share}" for name, share in drops.items()]),
        segments=segments,
        fixture=_argument(arguments, "fixture", (str, type(None))),
        with_live_experiments=_argument(arguments, "with_live_experiments", (bool,)),
        profile=_argument(arguments, "profile", (str, type(None))),
        guardrails=_recorded_guardrails(arguments.get("guardrails", [])),
    )
    return spec


def simulate_from_bundle(
    directory: str,
    *,
    report_dir: str | None = None,
    keep: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict, Path | None]:
    """Reproduce a run from its bundle alone (its arguments, definitions, profile and
    fixture copy; nothing is read from the live database): the same seed gives the same
    numbers."""
    path = Path(directory)
    contents = bundle_read(path)
    spec = spec_from_arguments(bundle_json(contents, "arguments.json", path))
    snapshot = bundle_json(contents, "experiment.json", path)
    others = bundle_json(contents, "experiments.json", path)
    if not isinstance(others, list):
        raise InvalidInput({"experiments.json": ["must be a list of experiments"]})
    profile = bundle_json(contents, "profile.json", path) if "profile.json" in contents else None
    fixtures = [name for name in contents if FIXTURE_FILE_RE.match(name)]
    if spec.fixture and not fixtures:
        raise DomainError(f"{path}: the run used a fixture but the bundle holds no copy")
    fixture_path = path / fixtures[0] if spec.fixture else None
    run = simulate_in_scratch(
        spec,
        snapshot=snapshot,
        others=others,
        fixture_path=fixture_path,
        profile=profile,
        keep=keep,
        progress=progress,
    )
    bundle = write_bundle(run, Path(report_dir), fixture_path) if report_dir else None
    return run, bundle


def check_expectations(run: dict, expect: dict) -> dict[str, bool]:
    """Batch expectations, judged on the per-impression ratio metric of each planted type
    (like -> like_rate): covered (every true effect inside its CI; with no effect planted,
    every ratio metric's CI holds 0), significant (every planted effect at p < 0.05),
    srm_flagged and guardrails_passed. A planted type without a ratio metric is neither
    covered nor significant."""
    results, truth = run["results"], run["truth"]
    effects = [row for row in truth if row["true_lift"]]
    judged = effects or [row for row in truth if row["covered"] is not None]
    actual = {
        "srm_flagged": results["srm"]["flagged"],
        "covered": all(row["covered"] is True for row in judged),
        "significant": bool(effects) and all(row["significant"] is True for row in effects),
        "guardrails_passed": results["guardrails_passed"],
    }
    wanted = {"guardrails_passed": True, **expect}
    return {name: actual[name] == value for name, value in wanted.items() if name in actual}


def read_batch(path: Path) -> list[dict]:
    try:
        entries = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise InvalidInput({"--batch-file": [str(error)]}) from error
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise DomainError("--batch-file must hold a YAML list of simulations")
    return entries


def simulate_batch(path: Path, *, report_dir: str | None = None) -> dict:
    """Run every simulation of a batch file in turn, each in its own scratch database (each
    writes its bundle to `report_dir`)
    and check its expectations; the summary (also written to `report_dir` as
    batch-summary.json and batch-summary.md) says which passed."""
    outcomes = []
    for index, entry in enumerate(read_batch(path)):
        expect = entry.pop("expect", {})
        if not entry.get("experiment"):
            raise InvalidInput({f"--batch-file entry {index}": ["experiment is required"]})
        run, _ = simulate_once(
            report_dir=report_dir,
            experiment=entry["experiment"],
            users=entry.get("users", 1000),
            days=entry.get("days", 1),
            effect=[f"{k}={v}" for k, v in (entry.get("effect") or {}).items()],
            seed=entry.get("seed", 1),
            drop_exposures=[f"{k}={v}" for k, v in (entry.get("drop_exposures") or {}).items()],
            fixture=entry.get("fixture"),
            with_live_experiments=bool(entry.get("with_live_experiments", False)),
        )
        checks = check_expectations(run, expect)
        outcomes.append(
            {
                "index": index,
                "run_id": run["run_id"],
                "passed": all(checks.values()),
                "checks": checks,
            }
        )
    summary = {"passed": all(o["passed"] for o in outcomes), "runs": outcomes}
    if report_dir:
        write_batch_summary(summary, Path(report_dir))
    return summary


def write_batch_summary(summary: dict, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "batch-summary.json").write_text(json.dumps(summary, indent=2))
    (directory / "batch-summary.md").write_text(
        "\n".join(
            ["| run | id | result | checks |", "| --- | --- | --- | --- |"]
            + [
                f"| {o['index']} | {o['run_id']} | {'pass' if o['passed'] else 'FAIL'} "
                f"| {', '.join(f'{k}={v}' for k, v in o['checks'].items())} |"
                for o in summary["runs"]
            ]
        )
        + "\n"
    )
