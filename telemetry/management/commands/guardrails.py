"""`manage.py guardrails check`: a customer's guardrail file judged on experiments or report
bundles, with an exit code for CI (docs/recsys-experiments.md, "Guardrail files")."""

from __future__ import annotations

from django.core.management.base import CommandError

from recsys_experiments.lib.errors import DomainError
from recsys_experiments.lib.guardrail_files import (
    GuardrailFile,
    evaluate_on_results,
    load_guardrail_file,
    read_bundle_results,
    verdict,
)
from recsys_experiments.lib.text import shown
from recsys_experiments.management.base import RecsysCommand
from recsys_experiments.models import ExperimentStatus
from recsys_experiments.selectors import experiment_list
from telemetry.results.analysis import experiment_results

# Exit codes (documented in docs/recsys-experiments.md): 0 every check passed, 1 a check
# failed, 2 the file or an argument is bad (nothing was judged).
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
STATUS_WORDS = {"passed": "passed", "failed": "FAILED"}


def bad_input(message: str) -> CommandError:
    return CommandError(message, returncode=EXIT_BAD_INPUT)


def load_file_option(path: str, option: str = "--file") -> GuardrailFile:
    """The guardrail file of an option, or one CommandError line with exit code 2."""
    try:
        return load_guardrail_file(path)
    except DomainError as error:
        raise bad_input(f"{option} {shown(path, 200)}: {error.message}") from error


def apply_file(results: dict, guardrail_file: GuardrailFile, stderr) -> None:
    """experiment_report/simulate with --guardrails: the file's policy on top of their own
    exit rule (a failed guardrail of either source already exits 1 there)."""
    judged = verdict(results, guardrail_file)
    for warning in judged["warnings"]:
        stderr.write(f"guardrail file warning: {warning}")
    if not judged["passed"]:
        raise CommandError(
            f"guardrail file {shown(guardrail_file.path, 200)}: {'; '.join(judged['failures'])}",
            returncode=EXIT_FAILED,
        )


def check_line(subject: str, guardrail: dict) -> str:
    limit = ", ".join(f"{k} {v}" for k, v in guardrail.items() if k.startswith("max_"))
    where = f" ({guardrail['variant']})" if guardrail.get("variant") else ""
    value = "—" if guardrail["value"] is None else f"{guardrail['value']:+.4f}"
    ci = ""
    if guardrail.get("ci_low") is not None:
        ci = f" CI [{guardrail['ci_low']:+.4f}, {guardrail['ci_high']:+.4f}]"
    status = STATUS_WORDS.get(guardrail["status"], guardrail["status"])
    if guardrail.get("reason") and guardrail["status"] == "not enough data":
        status += f" ({guardrail['reason']})"
    return f"{subject}: {guardrail['metric']}{where} {limit}: value {value}{ci}: {status}"


class Command(RecsysCommand):
    help = (
        "Guardrail files: `check --file F` judges a customer's guardrail file on experiments "
        "(default every active one, latest phase) or on report bundles. Exit 0 when every "
        "check passed, 1 when one failed, 2 for a bad file or argument."
    )

    def add_actions(self, subparsers):
        check = subparsers.add_parser(
            "check", help="judge a guardrail file; exit 0 passed, 1 failed, 2 bad input"
        )
        check.add_argument("--file", required=True, help="the customer's guardrail YAML file")
        check.add_argument(
            "--experiment", action="append", default=[], metavar="KEY",
            help="an experiment to check (repeatable; default every active experiment)",
        )  # fmt: skip
        check.add_argument("--phase", type=int, help="phase number (default the latest)")
        check.add_argument(
            "--bundle", action="append", default=[], metavar="DIR",
            help="a report bundle directory (its results.json) to check instead (repeatable)",
        )  # fmt: skip
        self.add_json_flag(check)

    def handle_check(self, *, file, experiment, phase, bundle, as_json, **options):
        guardrail_file = load_file_option(file)
        if phase is not None and phase < 1:
            raise bad_input("--phase must be a phase number from 1")
        try:
            checks = self.run_checks(guardrail_file, experiment, phase, bundle)
        except DomainError as error:
            raise bad_input(error.message) from error
        passed = all(check["passed"] for check in checks)
        if as_json:
            self.emit_json({**guardrail_file.policy(), "passed": passed, "checks": checks})
        else:
            self.print_checks(guardrail_file, checks)
        if not passed:
            failed = [c["experiment"] for c in checks if not c["passed"]]
            raise CommandError(
                f"guardrails check failed: {', '.join(failed)}", returncode=EXIT_FAILED
            )

    def run_checks(self, guardrail_file, keys, phase, bundles) -> list[dict]:
        if not keys and not bundles:
            keys = [e.key for e in experiment_list(status=ExperimentStatus.ACTIVE)]
        checks = []
        for key in dict.fromkeys(keys):
            results = experiment_results(
                self.get_experiment(key),
                phase=phase,
                guardrails=guardrail_file.guardrails_for(key),
            )
            checks.append(self.judge(guardrail_file, results, bundle=None))
        for directory in dict.fromkeys(bundles):
            stored = read_bundle_results(directory)
            guardrails = guardrail_file.guardrails_for(stored["experiment"])
            results = {**stored, "guardrails": evaluate_on_results(stored, guardrails)}
            checks.append(self.judge(guardrail_file, results, bundle=directory))
        return checks

    @staticmethod
    def judge(guardrail_file, results: dict, *, bundle: str | None) -> dict:
        judged = verdict(results, guardrail_file)
        srm = results.get("srm") or {}
        phase = results.get("phase")
        return {
            "experiment": results["experiment"],
            "bundle": bundle,
            "phase": phase.get("number") if isinstance(phase, dict) else None,
            "passed": judged["passed"],
            "failures": judged["failures"],
            "warnings": judged["warnings"],
            "srm": {"flagged": judged["srm_flagged"], "p_value": srm.get("p_value")},
            "guardrails": [g for g in results["guardrails"] if g.get("source") == "file"],
        }

    def print_checks(self, guardrail_file, checks: list[dict]) -> None:
        self.stdout.write(
            f"guardrail file {guardrail_file.path} (customer {guardrail_file.customer}, "
            f"srm: {guardrail_file.srm}, not_enough_data: {guardrail_file.not_enough_data})"
        )
        if not checks:
            self.stdout.write("no active experiments: nothing to check")
        for check in checks:
            subject = check["experiment"] + (
                f" [bundle {check['bundle']}]" if check["bundle"] else ""
            )
            for guardrail in check["guardrails"]:
                self.stdout.write(check_line(subject, guardrail))
            if check["srm"]["flagged"]:
                word = "FAILED" if guardrail_file.srm == "fail" else "warning"
                self.stdout.write(
                    f"{subject}: sample ratio mismatch flagged (p = {check['srm']['p_value']}): "
                    f"{word}"
                )
            self.stdout.write(f"{subject}: {'passed' if check['passed'] else 'FAILED'}")
            for warning in check["warnings"]:
                self.stderr.write(f"{subject}: warning: {warning}")
