from django.core.management.base import CommandError

from recsys_experiments.lib.guardrails import FAILED, NOT_ENOUGH_DATA
from recsys_experiments.management.base import RecsysCommand
from telemetry.results.analysis import experiment_results, parse_date, parse_mde
from telemetry.results.report import report_lines


class Command(RecsysCommand):
    help = (
        "An experiment's results for one phase (default the latest) over its run, optionally "
        "narrowed by --days (the last N UTC days of the phase) and --from/--to (UTC dates): "
        "exposed users of the clean population, conversion per outcome type, lift versus "
        "control with 95% CI and p-value (always-valid when the experiment uses sequential "
        "testing), excluded users, sample ratio mismatch, guardrails, and the primary metric's "
        "power: MDE now and days to reach --mde. Exits 1 when a guardrail fails (not when it "
        "only lacks data)."
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
        self.add_json_flag(parser, "print JSON")

    def run(self, *, key, phase, date_from, date_to, days, mde, as_json, **options):
        if days is not None and not 1 <= days <= 366:
            raise CommandError("--days must be from 1 to 366")
        if phase is not None and phase < 1:
            raise CommandError("--phase must be a phase number from 1")
        date_from, date_to = parse_date(date_from, "--from"), parse_date(date_to, "--to")
        mde = parse_mde(mde, "--mde")
        if date_from and date_to and date_from > date_to:
            raise CommandError("--from must not be after --to")
        results = experiment_results(
            self.get_experiment(key),
            phase=phase,
            date_from=date_from,
            date_to=date_to,
            days=days,
            mde=mde,
        )
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
