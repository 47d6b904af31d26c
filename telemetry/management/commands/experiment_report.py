from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import CommandError

from recsys_experiments.db import reading
from recsys_experiments.lib.guardrails import FAILED, NOT_ENOUGH_DATA
from recsys_experiments.management.base import RecsysCommand
from telemetry.management.commands.guardrails import apply_file, load_file_option
from telemetry.results.analysis import experiment_results, parse_date, parse_mde
from telemetry.results.provenance import bundle_write, code_version, experiment_snapshot
from telemetry.results.report import report_lines


class Command(RecsysCommand):
    help = (
        "An experiment's results for one phase (default the latest) over its run, optionally "
        "narrowed by --days (the last N UTC days of the phase) and --from/--to (UTC dates): "
        "exposed users of the clean population, conversion per outcome type, lift versus "
        "control with 95% CI and p-value (always-valid when the experiment uses sequential "
        "testing), excluded users, sample ratio mismatch, guardrails, and the primary metric's "
        "power: MDE now and days to reach --mde. Exits 1 when a guardrail fails (not when "
        "it only lacks data); with "
        "--guardrails FILE a customer's guardrail file is judged too (its srm and "
        "not_enough_data rules included; exit 2 when the file is bad)."
    )

    def add_options(self, parser):
        parser.add_argument("key", help="experiment key")
        parser.add_argument("--phase", type=int, help="phase number (default the latest)")
        parser.add_argument("--from", dest="date_from", help="first UTC day, YYYY-MM-DD")
        parser.add_argument("--to", dest="date_to", help="last UTC day, YYYY-MM-DD")
        parser.add_argument(
            "--days", type=int, help="the last N UTC days of the phase, ending at its end"
        )
        parser.add_argument(
            "--mde",
            help="relative minimum detectable effect for the duration estimate, e.g. 0.03 "
            "(default settings RESULTS_POWER_MDE)",
        )
        parser.add_argument("--guardrails", metavar="FILE", help="a customer's guardrail file")
        parser.add_argument(
            "--report-dir", metavar="DIR",
            help="also write a report bundle to DIR/<key>-<UTC time>/ (definition, phase, "
            "arguments, ranking provenance, code version, results, report text, manifest)",
        )  # fmt: skip
        self.add_json_flag(parser, "print JSON")

    def run(
        self,
        *,
        key,
        phase,
        date_from,
        date_to,
        days,
        mde,
        as_json,
        guardrails,
        report_dir,
        **options,
    ):
        guardrail_file = load_file_option(guardrails, "--guardrails") if guardrails else None
        if days is not None and not 1 <= days <= 366:
            raise CommandError("--days must be from 1 to 366")
        if phase is not None and phase < 1:
            raise CommandError("--phase must be a phase number from 1")
        date_from, date_to = parse_date(date_from, "--from"), parse_date(date_to, "--to")
        mde = parse_mde(mde, "--mde")
        if date_from and date_to and date_from > date_to:
            raise CommandError("--from must not be after --to")
        experiment = self.get_experiment(key)
        file_guardrails = guardrail_file.guardrails_for(key) if guardrail_file else None
        with reading():  # the read replica, when configured (recsys_experiments/db.py)
            results = experiment_results(
                experiment,
                phase=phase,
                date_from=date_from,
                date_to=date_to,
                days=days,
                guardrails=file_guardrails,
                mde=mde,
            )
        if report_dir:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            arguments = {
                "key": key,
                "phase": phase,
                "from": date_from,
                "to": date_to,
                "days": days,
                "mde": mde,
                "guardrails_file": guardrails,
                "guardrails": file_guardrails or [],
            }
            bundle = bundle_write(
                Path(report_dir) / f"{key}-{stamp}",
                {
                    "arguments.json": arguments,
                    "experiment.json": experiment_snapshot(experiment),
                    # The ranking profiles, versions and knob hashes the window's
                    # impressions were served with, per variant.
                    "ranking.json": results["ranking"],
                    "code.json": code_version(),
                    "results.json": {"results": results},
                    "report.txt": "\n".join(report_lines(results)) + "\n",
                },
            )
            self.stderr.write(f"report bundle: {bundle}")
        if as_json:
            self.emit_json(results)
        else:
            self.stdout.write("\n".join(report_lines(results)))
        unknown = [g["metric"] for g in results["guardrails"] if g["status"] == NOT_ENOUGH_DATA]
        if unknown:
            self.stderr.write(f"guardrail not enough data: {', '.join(unknown)}")
        failed = [g["metric"] for g in results["guardrails"] if g["status"] == FAILED]
        if failed:
            raise CommandError(f"guardrail failed: {', '.join(failed)}", returncode=1)
        if guardrail_file:
            apply_file(results, guardrail_file, self.stderr)
