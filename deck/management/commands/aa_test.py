import json
import sys

from deck.lab.aa import (
    aa_spec,
    details,
    headline,
    run_fast,
    run_real,
    sequential_tuning,
    summarise,
    summary_table,
    write_aa_bundle,
)
from recsys_experiments.management.base import RecsysCommand


def run_bar(stream):
    def show(done: int, total: int) -> None:
        if done != total and done % max(1, total // 50):
            return
        stream.write(f"\r{done}/{total} runs")
        if done == total:
            stream.write("\n")
        stream.flush()

    return show


class Command(RecsysCommand):
    help = (
        "A/A harness: N experiments with no effect (control/treatment 50/50, M fresh users "
        "arriving over D days), results looked at once a day. Reports the SRM false-alarm "
        "rate (p < 0.001) and per default catalogue metric the false-positive rate at 0.05 "
        "(fixed and sequential, stopping at the first significant look), the coverage of 0 "
        "at the final look and a Kolmogorov-Smirnov test of the final fixed p-values. By "
        "default through the real assignment, deck and outcome paths in a scratch database "
        "(the live database is never written); --fast: the Python twin in numpy with the "
        "same statistics code. See docs/recsys-experiments.md, 'A/A harness'."
    )
    # The real path drives the end-user paths itself, in a scratch database.
    service_transaction = False

    def add_options(self, parser):
        # Text, checked by aa_spec: a bad value is one error line.
        parser.add_argument("--runs", required=True, help="A/A experiments to run")
        parser.add_argument("--users", required=True, help="users per experiment")
        parser.add_argument("--days", required=True, help="days (one look at the end of each)")
        parser.add_argument("--seed", default="1", help="seed of every random choice")
        parser.add_argument("--fast", action="store_true", help="the Python twin (numpy)")
        parser.add_argument("--report-dir", help="write a report bundle to DIR/aa-.../")
        self.add_json_flag(parser, "print the summary as JSON")

    def run(self, *, runs, users, days, seed, fast, report_dir, as_json, **options):
        spec = aa_spec(runs=runs, users=users, days=days, seed=seed, fast=fast)
        progress = None if as_json else run_bar(sys.stderr)
        results = (run_fast if spec.fast else run_real)(spec, progress)
        summary = summarise(spec, results)
        bundle = write_aa_bundle(spec, results, summary, report_dir) if report_dir else None
        if as_json:
            self.stdout.write(json.dumps(summary, indent=2))
            return
        self.stdout.write(headline(summary, sequential_tuning()))
        self.stdout.write("\n".join(summary_table(summary, details(results))))
        if bundle:
            self.stdout.write(f"report bundle: {bundle}")
