from django.core.management.base import CommandError

from recsys_experiments.dblint import CHECKS, lint
from recsys_experiments.management.base import RecsysCommand


class Command(RecsysCommand):
    help = (
        "Lint the database's public schema for security and performance problems: "
        + "; ".join(f"{name} ({meaning})" for name, (meaning, _) in CHECKS.items())
        + ". Exits 1 when there is any finding."
    )
    # Reads the catalogue as the connecting user (the schema's owner), not the service role.
    service_transaction = False

    def add_options(self, parser):
        self.add_json_flag(parser, "print findings as JSON")

    def run(self, *, as_json: bool, **options):
        findings = lint()
        if as_json:
            self.emit_json([finding.as_dict() for finding in findings])
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
