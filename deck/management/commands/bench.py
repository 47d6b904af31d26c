import json
import sys

from deck.lab.bench import bench_markdown, bench_run, bench_spec, bench_write
from recsys_experiments.management.base import RecsysCommand


class Command(RecsysCommand):
    help = (
        "Benchmarks the hot paths (deck, outcomes, assignment) over HTTP with wrk against a "
        "gunicorn it starts and as the bare SQL ceiling with pgbench, at 1, 2 and 4 clients, and "
        "sweeps catalogue size, active experiments, a heavy user, history size and rows in the "
        "results window, all in a scratch database it creates and drops (the live database is "
        "never touched). Writes bench.json and bench.md to --out (default var/bench/). "
        "synchronous_commit is on unless --synchronous-commit off. See docs/performance.md."
    )
    # The bench drives its own sessions in a scratch database.
    service_transaction = False

    def add_options(self, parser):
        # Text, checked by bench_spec: a bad value is one error line.
        parser.add_argument("--duration", help="seconds per timed run (default 5)")
        parser.add_argument("--clients", help="client counts, e.g. 1,2,4 (default)")
        parser.add_argument("--titles", help="catalogue sizes (default 600,20000,100000)")
        parser.add_argument("--experiments", help="active experiments (default 2,10,30)")
        parser.add_argument(
            "--history", help="history rows before the window (default 100000,1000000)"
        )
        parser.add_argument(
            "--window", help="rows inside the results window (default 9000,1000000)"
        )
        parser.add_argument("--heavy-outcomes", help="outcomes of the heavy user (default 30000)")
        parser.add_argument("--users", help="bench users with API tokens (default 200)")
        parser.add_argument("--workers", help="gunicorn workers (default 2)")
        parser.add_argument("--threads", help="gunicorn threads per worker (default 1: sync)")
        parser.add_argument(
            "--synchronous-commit", default="on", help="on (default) or off, for the bench"
        )
        parser.add_argument("--no-http", action="store_true", help="skip the HTTP half")
        parser.add_argument("--out", help="directory for bench.json and bench.md (var/bench)")
        parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 s runs (tests)")
        self.add_json_flag(parser, "print bench.json instead of the Markdown table")

    def run(self, *, as_json, **options):
        keys = [
            *("duration", "clients", "titles", "experiments", "history", "window"),
            *("heavy_outcomes", "users", "workers", "threads", "synchronous_commit"),
            *("no_http", "out", "quick"),
        ]
        spec = bench_spec(**{key: options.get(key) for key in keys})
        quiet = as_json

        def log(line: str) -> None:
            if not quiet:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()

        report = bench_run(spec, log)
        json_path, md_path = bench_write(report, spec.out)
        if as_json:
            self.stdout.write(json.dumps(report, indent=2))
            return
        self.stdout.write(bench_markdown(report))
        self.stdout.write(f"written: {json_path} and {md_path}")
