import json

from django.core.management.base import BaseCommand, CommandError

from recsys_experiments.dblint import CHECKS, lint


class Command(BaseCommand):
    help = (
        "Lint the database's public schema for security and performance problems: "
        + "; ".join(f"{name} ({meaning})" for name, (meaning, _) in CHECKS.items())
        + ". Exits 1 when there is any finding."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print findings as JSON")

    def handle(self, *args, json: bool, **options):
        findings = lint()
        if json:
            self.stdout.write(_dumps([finding.as_dict() for finding in findings]))
        else:
            for finding in findings:
                self.stdout.write(f"{finding.check}: {finding.object}: {finding.detail}")
            self.stdout.write(
                f"{len(findings)} finding(s) in {len(CHECKS)} checks"
                if findings
                else f"no findings ({len(CHECKS)} checks)"
            )
        if findings:
            raise CommandError(f"dblint found {len(findings)} problem(s)", returncode=1)


def _dumps(data) -> str:
    return json.dumps(data, indent=2)
