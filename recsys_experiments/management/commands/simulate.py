import json
import sys
from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError

from recsys_experiments.errors import DomainError
from recsys_experiments.report import report_lines
from recsys_experiments.simulation import (
    SimulationSpec,
    parse_effects,
    run_simulation,
    write_bundle,
)


def progress_bar(stream):
    def show(done: int, total: int) -> None:
        if done != total and done % max(1, total // 50):
            return
        filled = int(30 * done / total)
        stream.write(f"\r[{'#' * filled}{' ' * (30 - filled)}] {done}/{total} users")
        if done == total:
            stream.write("\n")
        stream.flush()

    return show


class Command(BaseCommand):
    help = (
        "Simulate an experiment: N synthetic users with known propensities drive the real deck "
        "and outcome path, true effects apply to the non-control variants, and the report is "
        "set beside the truth. Writes a report bundle with --report-dir; --batch-file runs a "
        "YAML list of simulations. Exits 1 when a guardrail (or a batch expectation) fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("--experiment", help="experiment key (created and activated if new)")
        parser.add_argument("--users", type=int, default=1000, help="synthetic users")
        parser.add_argument("--days", type=int, default=1, help="days of decks per user")
        parser.add_argument(
            "--effect", action="append", default=[], metavar="TYPE=LIFT",
            help="true lift of a conversion rate in non-control variants, e.g. like=+0.05",
        )  # fmt: skip
        parser.add_argument("--fixture", help="a load_fixture file whose segments shape users")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--drop-exposures", action="append", default=[], metavar="VARIANT=SHARE",
            help="plant a sample ratio mismatch: this share of the variant's users get no deck",
        )  # fmt: skip
        parser.add_argument("--report-dir", help="write summary.md, results.json, arguments.json")
        parser.add_argument("--batch-file", help="YAML list of simulations (keys as the flags)")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, **options):
        try:
            if options["batch_file"]:
                return self.run_batch(options)
            if not options["experiment"]:
                raise CommandError("--experiment is required (or --batch-file)")
            run = self.run_one(self.spec_from_options(options), options)
        except DomainError as error:
            raise CommandError(error.message) from error
        results = run["results"]
        if options["json"]:
            self.stdout.write(json.dumps(run, indent=2))
        else:
            self.stdout.write("\n".join(report_lines(results)))
            self.stdout.write("")
            for row in run["truth"]:
                if row["true_lift"] or row["outcome_type"] == "like":
                    estimate = row["estimated_lift"]
                    self.stdout.write(
                        f"truth {row['variant']}/{row['outcome_type']}: "
                        f"true {row['true_lift']:+.4f}, estimated "
                        f"{'—' if estimate is None else f'{estimate:+.4f}'}, "
                        f"covered: {row['covered']}"
                    )
        if not results["guardrails_passed"]:
            raise CommandError("a guardrail failed", returncode=1)

    def spec_from_options(self, options) -> SimulationSpec:
        from recsys_experiments.fixtures import segments_from_fixture

        spec = SimulationSpec(
            experiment=options["experiment"],
            users=options["users"],
            days=options["days"],
            effects=parse_effects(options["effect"]),
            seed=options["seed"],
            drop_exposures=parse_drops(options["drop_exposures"]),
        )
        if options.get("fixture"):
            spec.segments = segments_from_fixture(Path(options["fixture"]))
        return spec

    def run_one(self, spec: SimulationSpec, options) -> dict:
        show = None if options["json"] else progress_bar(sys.stderr)
        run = run_simulation(spec, progress=show)
        if options["report_dir"]:
            target = write_bundle(run, Path(options["report_dir"]))
            if not options["json"]:
                self.stdout.write(f"report bundle: {target}")
        return run

    def run_batch(self, options):
        try:
            entries = yaml.safe_load(Path(options["batch_file"]).read_text())
        except (OSError, yaml.YAMLError) as error:
            raise CommandError(f"--batch-file: {error}") from error
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise CommandError("--batch-file must hold a YAML list of simulations")
        outcomes = []
        for index, entry in enumerate(entries):
            expect = entry.pop("expect", {})
            merged = {
                **options,
                "experiment": entry.get("experiment"),
                "users": entry.get("users", 1000),
                "days": entry.get("days", 1),
                "effect": [f"{k}={v}" for k, v in (entry.get("effect") or {}).items()],
                "seed": entry.get("seed", 1),
                "drop_exposures": [
                    f"{k}={v}" for k, v in (entry.get("drop_exposures") or {}).items()
                ],
                "fixture": entry.get("fixture"),
                "json": True,
            }
            if not merged["experiment"]:
                raise CommandError(f"--batch-file entry {index}: experiment is required")
            run = self.run_one(self.spec_from_options(merged), merged)
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
        if options["report_dir"]:
            directory = Path(options["report_dir"])
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "batch-summary.json").write_text(json.dumps(summary, indent=2))
            (directory / "batch-summary.md").write_text(
                "\n".join(
                    ["| run | id | result | checks |", "| --- | --- | --- | --- |"]
                    + [
                        f"| {o['index']} | {o['run_id']} | {'pass' if o['passed'] else 'FAIL'} "
                        f"| {', '.join(f'{k}={v}' for k, v in o['checks'].items())} |"
                        for o in outcomes
                    ]
                )
                + "\n"
            )
        self.stdout.write(json.dumps(summary, indent=2))
        if not summary["passed"]:
            raise CommandError("a simulation in the batch failed its expectations", returncode=1)


def parse_drops(texts: list[str]) -> dict[str, float]:
    drops = {}
    for text in texts:
        variant, _, share = text.partition("=")
        try:
            drops[variant] = float(share)
        except ValueError:
            raise CommandError(f"--drop-exposures {text!r}: expected VARIANT=SHARE") from None
        if not 0 <= drops[variant] <= 1:
            raise CommandError(f"--drop-exposures {text!r}: the share must be from 0 to 1")
    return drops


def check_expectations(run: dict, expect: dict) -> dict[str, bool]:
    """Batch expectations: srm_flagged, covered (every true effect inside its CI),
    significant (every non-zero effect at p < 0.05), guardrails_passed."""
    results, truth = run["results"], run["truth"]
    effects = [row for row in truth if row["true_lift"]]
    actual = {
        "srm_flagged": results["srm"]["flagged"],
        "covered": all(row["covered"] for row in (effects or truth) if row["covered"] is not None),
        "significant": all((row["p_value"] or 1) < 0.05 for row in effects),
        "guardrails_passed": results["guardrails_passed"],
    }
    wanted = {"guardrails_passed": True, **expect}
    return {name: actual[name] == value for name, value in wanted.items() if name in actual}
