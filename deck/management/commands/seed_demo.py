import time

from django.core.management.base import CommandError

from deck.lab.demo import demo_present, seed_demo
from recsys_experiments.management.base import RecsysCommand


class Command(RecsysCommand):
    help = (
        "Load demo data (idempotent): a 600-title catalogue, 220 users with tastes and CF "
        "scores, the experiments swipe_blend_test and diversity_cap_v1, and a week of decks "
        "and outcomes made through the real deck and outcome path, back-dated."
    )

    # seed_demo owns its transaction and drives the end-user paths as each user.
    service_transaction = False

    def add_options(self, parser):
        parser.add_argument("--items", type=int, default=600, help="catalogue size (>= 500)")
        parser.add_argument("--users", type=int, default=220, help="users (>= 200)")
        parser.add_argument("--days", type=int, default=7, help="days of history")
        parser.add_argument("--seed", type=int, default=7, help="random seed")

    def run(self, *, items, users, days, seed, **options):
        if demo_present():
            self.stdout.write("demo data already present; nothing to do")
            return
        if items < 1 or users < 1 or days < 0:
            raise CommandError("--items and --users must be positive, --days not negative")
        self.stdout.write(f"seeding demo data ({items} titles, {users} users, {days} days)...")
        started = time.monotonic()
        report = seed_demo(items=items, users=users, days=days, seed=seed)
        self.stdout.write(
            f"seeded {report.items} titles, {report.users} users, {report.decks} decks, "
            f"{report.impressions} impressions, {report.outcomes} outcomes "
            f"in {time.monotonic() - started:.1f}s"
        )
