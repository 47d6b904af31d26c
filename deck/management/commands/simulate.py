import json
import sys
from pathlib import Path

from django.core.management.base import CommandError

from deck.lab.runs import simulate_batch, simulate_from_bundle, simulate_once
from deck.lab.simulation import truth_line
from recsys_experiments.lib.guardrails import FAILED, NOT_ENOUGH_DATA
from recsys_experiments.management.base import RecsysCommand
from telemetry.management.commands.guardrails import apply_file, load_file_option
from telemetry.results.report import report_lines


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


class Command(RecsysCommand):
    help = (
        "Simulate an experiment: N synthetic users with per-impression propensities drive the "
        "real deck and outcome path, true per-impression effects apply to the non-control "
        "variants, and the report is set beside the truth. Every run happens in a scratch "
        "database (dropped afterwards unless --keep); the live database is only read. Writes "
        "a report bundle with --report-dir; --from-bundle reproduces a run from one; "
        "--batch-file runs a YAML list of simulations. Exits 1 when a guardrail (or a batch "
        "expectation) fails."
    )
    # The simulation drives the end-user paths itself, one transaction per synthetic user.
    service_transaction = False

    def add_options(self, parser):
        parser.add_argument("--experiment", help="experiment key (created and activated if new)")
        parser.add_argument("--users", type=int, default=1000, help="synthetic users")
        parser.add_argument("--days", type=int, default=1, help="days of decks per user")
        parser.add_argument(
            "--effect", action="append", default=[], metavar="TYPE=LIFT",
            help="true per-impression effect in non-control variants, e.g. like=+0.05",
        )  # fmt: skip
        parser.add_argument("--fixture", help="a load_fixture file whose segments shape users")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--drop-exposures", action="append", default=[], metavar="VARIANT=SHARE",
            help="plant a sample ratio mismatch: this share of the variant's users get no deck",
        )  # fmt: skip
        parser.add_argument(
            "--with-live-experiments", action="store_true",
            help="copy the other active live experiments into the scratch database too",
        )  # fmt: skip
        parser.add_argument(
            "--keep", action="store_true", help="keep the scratch database (its name is printed)"
        )
        parser.add_argument("--report-dir", help="write the run's report bundle to DIR/<run id>/")
        parser.add_argument(
            "--from-bundle", metavar="DIR",
            help="reproduce the run of a report bundle (its definitions, fixture and seed)",
        )  # fmt: skip
        parser.add_argument(
            "--profile", metavar="NAME",
            help="run with this live ranking profile as the default (default: the live default)",
        )  # fmt: skip
        parser.add_argument("--batch-file", help="YAML list of simulations (keys as the flags)")
        parser.add_argument(
            "--guardrails", metavar="FILE", help="a customer's guardrail file judged on the run"
        )
        self.add_json_flag(parser, "print JSON")

    def run(
        self,
        *,
        batch_file,
        report_dir,
        as_json,
        experiment,
        from_bundle,
        keep,
        guardrails,
        **options,
    ):
        """One lab call: a batch, a bundle's run, or one run (its flags as they are); then
        print."""
        guardrail_file = load_file_option(guardrails, "--guardrails") if guardrails else None
        if guardrail_file and (batch_file or from_bundle):
            raise CommandError(
                "--guardrails judges one run: not with --batch-file or --from-bundle (a bundle "
                "replays the guardrails it recorded)",
                returncode=2,
            )
        progress = None if as_json else progress_bar(sys.stderr)
        if from_bundle:
            run, bundle = simulate_from_bundle(
                from_bundle, report_dir=report_dir, keep=keep, progress=progress
            )
            self.show(run, bundle, as_json, None)
            return
        if batch_file:
            summary = simulate_batch(Path(batch_file), report_dir=report_dir)
            self.stdout.write(json.dumps(summary, indent=2))
            if not summary["passed"]:
                raise CommandError(
                    "a simulation in the batch failed its expectations", returncode=1
                )
            return
        if not experiment:
            raise CommandError("--experiment is required (or --batch-file)")
        run, bundle = simulate_once(
            experiment=experiment,
            users=options["users"],
            days=options["days"],
            effect=options["effect"],
            seed=options["seed"],
            drop_exposures=options["drop_exposures"],
            fixture=options["fixture"],
            with_live_experiments=options["with_live_experiments"],
            profile=options["profile"],
            keep=keep,
            report_dir=report_dir,
            progress=progress,
            guardrails=guardrail_file.guardrails_for(experiment) if guardrail_file else [],
        )
        self.show(run, bundle, as_json, guardrail_file)

    def show(self, run: dict, bundle, as_json: bool, guardrail_file) -> None:
        if run["scratch_database"]:
            self.stderr.write(f"scratch database kept: {run['scratch_database']}")
        if bundle and not as_json:
            self.stdout.write(f"report bundle: {bundle}")
        if as_json:
            self.stdout.write(json.dumps(run, indent=2, default=str))
        else:
            self.print_report(run)
        statuses = [g["status"] for g in run["results"]["guardrails"]]
        if NOT_ENOUGH_DATA in statuses:
            self.stderr.write("a guardrail has not enough data")
        if FAILED in statuses:
            raise CommandError("a guardrail failed", returncode=1)
        if guardrail_file:
            apply_file(run["results"], guardrail_file, self.stderr)

    def print_report(self, run: dict) -> None:
        self.stdout.write("\n".join(report_lines(run["results"])))
        self.stdout.write("")
        for row in run["truth"]:
            if row["true_lift"] or row["outcome_type"] == "like":
                self.stdout.write(truth_line(row))
