import json

from django.core.management.base import BaseCommand, CommandError

from recsys_experiments.analysis import experiment_results
from recsys_experiments.errors import DomainError
from recsys_experiments.report import report_lines
from recsys_experiments.selectors import experiment_get


class Command(BaseCommand):
    help = (
        "An experiment's results over the last N days: exposed users, conversion per outcome "
        "type, lift versus control with 95% CI and p-value, sample ratio mismatch and "
        "guardrails. Exits 1 when a guardrail fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("key", help="experiment key")
        parser.add_argument("--days", type=int, default=7, help="window in UTC days (default 7)")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, key: str, days: int, **options):
        if not 1 <= days <= 366:
            raise CommandError("--days must be from 1 to 366")
        try:
            results = experiment_results(experiment_get(key), days=days)
        except DomainError as error:
            raise CommandError(error.message) from error
        if options["json"]:
            self.stdout.write(json.dumps(results, indent=2))
        else:
            self.stdout.write("\n".join(report_lines(results)))
        if not results["guardrails_passed"]:
            failed = [g["metric"] for g in results["guardrails"] if not g["passed"]]
            raise CommandError(f"guardrail failed: {', '.join(failed)}", returncode=1)
