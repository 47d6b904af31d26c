import json

from django.core.management.base import BaseCommand, CommandError

from telemetry.selectors import telemetry_health


class Command(BaseCommand):
    help = (
        "Telemetry health over the last N days: impressions missing experiment tags, outcomes "
        "with no matching impression, and the alerts firing now. Exit 0 when healthy, 1 when "
        "an alert fires (usable from cron)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=7, help="days to sum (default 7)")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, days: int, **options):
        if days < 1:
            raise CommandError("--days must be at least 1")
        health = telemetry_health(days=days)
        if options["json"]:
            self.stdout.write(json.dumps(health, indent=2))
        else:
            self.stdout.write(
                f"last {days} days: {health['impressions']} impressions, "
                f"{health['impressions_missing_experiments']} missing experiments "
                f"({health['impressions_missing_experiments_share']:.2%}); "
                f"{health['outcomes']} outcomes, {health['outcomes_without_impression']} "
                f"without impression ({health['outcomes_without_impression_share']:.2%}); "
                f"last impression {health['last_impression_at'] or 'never'}"
            )
            for alert in health["active_alerts"]:
                self.stdout.write(
                    f"ALERT {alert['day']} {alert['alert']}: value {alert['value']:.4g} "
                    f"(threshold {alert['threshold']:.4g})"
                )
            self.stdout.write("healthy" if health["healthy"] else "unhealthy")
        if not health["healthy"]:
            raise CommandError(
                f"{len(health['active_alerts'])} telemetry alert(s) firing", returncode=1
            )
