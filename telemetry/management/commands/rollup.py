from datetime import timedelta

from django.core.management.base import CommandError

from recsys_experiments.management.base import RecsysCommand
from telemetry.results.analysis import parse_date
from telemetry.rollups import rollup_rebuild_day, rollup_through, utc_today


class Command(RecsysCommand):
    help = (
        "Roll complete UTC days of telemetry into the daily rollups the views, the results "
        "and the alerts read (docs/telemetry.md, 'Rollups'): every day after the last rolled "
        "one through --through (default yesterday), and every day a late event reopened. "
        "Idempotent; run it from cron shortly after midnight UTC."
    )

    def add_options(self, parser):
        parser.add_argument("--through", help="last day to roll, YYYY-MM-DD (default yesterday)")
        parser.add_argument("--rebuild-day", help="roll this one day again, YYYY-MM-DD")
        self.add_json_flag(parser, "print the days rolled as JSON")

    def run(self, *, through=None, rebuild_day=None, as_json: bool, **options):
        if through is not None and rebuild_day is not None:
            raise CommandError("give --through or --rebuild-day, not both")
        yesterday = utc_today() - timedelta(days=1)
        if rebuild_day is not None:
            rolled = rollup_rebuild_day(day=parse_date(rebuild_day, "--rebuild-day"))
        else:
            last = parse_date(through, "--through") or yesterday
            if last > yesterday:
                raise CommandError(
                    f"--through {last.isoformat()} is not a complete UTC day "
                    f"(the last one is {yesterday.isoformat()})"
                )
            rolled = rollup_through(through=last)
        if as_json:
            self.emit_json({"rolled": [day.isoformat() for day in rolled]})
        elif rolled:
            self.stdout.write(
                f"rolled {len(rolled)} day(s): {', '.join(day.isoformat() for day in rolled)}"
            )
        else:
            self.stdout.write("nothing to roll: up to date")
