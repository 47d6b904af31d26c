import json
from pathlib import Path

from deck.lab.fixtures import load_fixture_file
from recsys_experiments.management.base import RecsysCommand


class Command(RecsysCommand):
    help = (
        "Load a customer fixture (JSON or YAML; schema in docs/fixtures.md): catalogue items, "
        "users with segments and traits, genre preferences, CF scores and per-segment event "
        "distributions. Validated whole before anything is written; an idempotent upsert. "
        "A fixture only creates and removes its own rows: it refuses an existing account it "
        "did not create. --reset first deletes the fixture's previous events, the accounts it "
        "created and its items."
    )

    def add_options(self, parser):
        parser.add_argument("path", help="fixture file (.json, .yaml or .yml)")
        parser.add_argument(
            "--reset", action="store_true", help="delete the fixture's own data first"
        )
        self.add_json_flag(parser, "print the counts as JSON")

    def run(self, *, path: str, reset: bool, as_json: bool, **options):
        counts = load_fixture_file(Path(path), reset=reset)
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
            f"loaded {counts['fixture']}: {counts['items']} items, {counts['users']} users, "
            f"{counts['cf_recos']} CF scores"
        )
        for segment, users in counts["segments"].items():
            self.stdout.write(f"  segment {segment}: {users} users")
