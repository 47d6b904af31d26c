import json
from pathlib import Path

from deck.lab.fixtures import load_fixture_file
from recsys_experiments.management.base import RecsysCommand


class Command(RecsysCommand):
    help = (
        "Load a customer fixture (JSON or YAML; schema in docs/fixtures.md): catalogue items, "
        "users with segments and traits, genre preferences, CF scores, per-segment event "
        "distributions, and history (experiments, assignments, impressions, outcomes, "
        "conversions). Validated whole before anything is written; loaded in one transaction; "
        "re-loading adds nothing. A fixture only creates and removes its own rows: it refuses an "
        "existing account it did not create. --reset first deletes what the fixture loaded "
        "(its users' events and assignments, the accounts it created and its items). Writes "
        "an evidence file (counts per table and segment, sha256 of the input) and prints its path."
    )

    def add_options(self, parser):
        parser.add_argument("path", help="fixture file (.json, .yaml or .yml)")
        parser.add_argument(
            "--reset", action="store_true", help="delete the fixture's own data first"
        )
        parser.add_argument(
            "--evidence-dir",
            help="where to write the evidence file (default var/evidence/<fixture name>/)",
        )
        self.add_json_flag(parser, "print the counts as JSON")

    def run(self, *, path: str, reset: bool, evidence_dir: str | None, as_json: bool, **options):
        counts = load_fixture_file(
            Path(path), reset=reset, evidence_dir=Path(evidence_dir) if evidence_dir else None
        )
        if as_json:
            self.stdout.write(json.dumps(counts, indent=2))
            return
        if counts["reset"]:
            removed = counts["reset"]
            self.stdout.write(
                f"reset {counts['fixture']}: removed {removed['outcomes']} outcomes, "
                f"{removed['impressions']} impressions, {removed['users']} users, "
                f"{removed['items']} items"
                + (
                    f" (kept {removed['items_kept']} items that other users' data references)"
                    if removed["items_kept"]
                    else ""
                )
            )
            self.stdout.write(
                f"  and {removed['conversions']} conversions, {removed['assignments']} assignments"
            )
        self.stdout.write(
            f"loaded {counts['fixture']}: {counts['items']} items, {counts['users']} users, "
            f"{counts['cf_recos']} CF scores"
        )
        for table, tally in counts["tables"].items():
            inserted, present = tally["inserted"], tally["already_present"]
            self.stdout.write(f"  {table}: {inserted} inserted, {present} already present")
        for segment, users in counts["segments"].items():
            events = counts["segment_counts"][segment]
            self.stdout.write(
                f"  segment {segment}: {users} users, {events['impressions']} impressions, "
                f"{events['outcomes']} outcomes, {events['conversions']} conversions"
            )
        self.stdout.write(f"evidence: {counts['evidence']}")
