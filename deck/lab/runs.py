"""Simulation runs as `manage.py simulate` asks for them: one run from its flags, or a batch
file (a YAML list of runs, each with optional expectations) with a pass/fail summary.

Bad input raises a domain error whose message is the command's one error line."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from deck.lab.fixtures import segments_from_fixture
from deck.lab.simulation import (
    SimulationSpec,
    parse_drops,
    parse_effects,
    run_simulation,
    write_bundle,
)
from recsys_experiments.lib.errors import DomainError, InvalidInput


def simulation_spec(
    *,
    experiment: str,
    users: int = 1000,
    days: int = 1,
    effect: Sequence[str] = (),
    seed: int = 1,
    drop_exposures: Sequence[str] = (),
    fixture: str | None = None,
) -> SimulationSpec:
    """The spec from the command's flags (`--effect like=+0.05`, `--drop-exposures t=0.3`)."""
    spec = SimulationSpec(
        experiment=experiment,
        users=users,
        days=days,
        effects=parse_effects(list(effect)),
        seed=seed,
        drop_exposures=parse_drops(list(drop_exposures)),
    )
    if fixture:
        spec.segments = segments_from_fixture(Path(fixture))
    return spec


def simulate_once(
    *,
    report_dir: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    guardrails: list[dict] | None = None,
    **flags,
) -> tuple[dict, Path | None]:
    """Run one simulation from the command's flags (those of `simulation_spec`); with
    `report_dir`, write its bundle there; `guardrails` (a guardrail file's) are judged beside
    the experiment's own. Returns the run and the bundle's directory (or None)."""
    run = run_simulation(simulation_spec(**flags), progress=progress, guardrails=guardrails)
    bundle = write_bundle(run, Path(report_dir)) if report_dir else None
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
    """Run every simulation of a batch file in turn (each writes its bundle to `report_dir`)
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
