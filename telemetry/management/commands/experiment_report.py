from django.core.management.base import CommandError

from recsys_experiments.management.base import RecsysCommand
from telemetry.results.analysis import experiment_results
from telemetry.results.report import report_lines


class Command(RecsysCommand):
    help = (
        "An experiment's results over the last N days: exposed users, conversion per outcome "
        "type, lift versus control with 95% CI and p-value, sample ratio mismatch and "
        "guardrails. Exits 1 when a guardrail fails."
    )

    def add_options(self, parser):
        parser.add_argument("key", help="experiment key")
        parser.add_argument("--days", type=int, default=7, help="window in UTC days (default 7)")
        self.add_json_flag(parser, "print JSON")

    def run(self, *, key: str, days: int, as_json: bool, **options):
        if not 1 <= days <= 366:
            raise CommandError("--days must be from 1 to 366")
        results = experiment_results(self.get_experiment(key), days=days)
        if as_json:
            self.emit_json(results)
        else:
            self.stdout.write("\n".join(report_lines(results)))
        if not results["guardrails_passed"]:
            failed = [g["metric"] for g in results["guardrails"] if not g["passed"]]
            raise CommandError(f"guardrail failed: {', '.join(failed)}", returncode=1)
