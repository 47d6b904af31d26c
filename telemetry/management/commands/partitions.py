from django.core.management.base import CommandError

from recsys_experiments.management.base import RecsysCommand
from telemetry.partitions import (
    MAX_MONTHS_AHEAD,
    partitions_detach,
    partitions_ensure,
    partitions_list,
)


class Command(RecsysCommand):
    help = (
        "Monthly partitions of rec_impressions, rec_outcomes, rec_conversions and "
        "rec_exposures (docs/telemetry.md): ensure creates this month's and the coming ones, "
        "list shows them, detach takes old months out (and archives them as CSV)."
    )
    # Creating and detaching partitions needs the tables' owner: the connecting user.
    service_transaction = False

    def add_actions(self, subparsers):
        ensure = subparsers.add_parser("ensure", help="create this and the next N months")
        ensure.add_argument(
            "--months-ahead",
            type=int,
            default=2,
            help=f"months after this one to create (0-{MAX_MONTHS_AHEAD}, default 2)",
        )
        self.add_json_flag(ensure)
        listing = subparsers.add_parser("list", help="every partition, its range and size")
        self.add_json_flag(listing)
        detach = subparsers.add_parser("detach", help="detach months before YYYY-MM")
        detach.add_argument(
            "--older-than", required=True, metavar="YYYY-MM", help="first month to keep"
        )
        detach.add_argument(
            "--archive-dir",
            metavar="DIR",
            help="write each detached partition to DIR/<partition>.csv, then drop it",
        )
        self.add_json_flag(detach)

    def handle_ensure(self, *, months_ahead: int, as_json: bool, **options):
        done = partitions_ensure(months_ahead=months_ahead)
        if as_json:
            self.emit_json(done)
            return
        created = [p for p in done if p["created"]]
        for partition in created:
            self.stdout.write(f"created {partition['partition']} ({partition['month']})")
        self.stdout.write(
            f"{len(created)} partition(s) created, {len(done) - len(created)} already there"
        )

    def handle_list(self, *, as_json: bool, **options):
        listed = partitions_list()
        if as_json:
            self.emit_json(listed)
            return
        if not listed:
            raise CommandError("no partitioned tables: run manage.py migrate")
        for p in listed:
            span = f"{p['from']} .. {p['to']}" if p["from"] else "default"
            self.stdout.write(
                f"{p['table']:<16} {p['partition']:<26} {span:<50} "
                f"~{p['rows_estimate']} rows {p['bytes']} bytes"
            )

    def handle_detach(self, *, older_than: str, archive_dir, as_json: bool, **options):
        done = partitions_detach(older_than=older_than, archive_dir=archive_dir)
        if as_json:
            self.emit_json(done)
            return
        for p in done:
            where = f"archived to {p['archive']} and dropped" if p["dropped"] else "kept as a table"
            self.stdout.write(f"detached {p['partition']} ({p['rows']} rows): {where}")
        self.stdout.write(f"{len(done)} partition(s) detached")
