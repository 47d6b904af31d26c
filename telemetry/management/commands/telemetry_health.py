from django.core.management.base import CommandError

from recsys_experiments.management.base import RecsysCommand
from telemetry.results.alerts import health_with_experiment_alerts


class Command(RecsysCommand):
    help = (
        "Telemetry health over the last N days: impressions missing experiment tags, outcomes "
        "with no matching impression, and the alerts firing now, including a sample ratio "
        "mismatch or a failed guardrail of an active experiment. Exit 0 when healthy, 1 when "
        "an alert fires (usable from cron)."
    )
    # Reads as the connecting user, as a cron job does.
    service_transaction = False

    def add_options(self, parser):
        parser.add_argument("--days", type=int, default=7, help="days to sum (default 7)")
        self.add_json_flag(parser, "print JSON")

    def run(self, *, days: int, as_json: bool, **options):
        if days < 1:
            raise CommandError("--days must be at least 1")
        health = health_with_experiment_alerts(days=days)
        if as_json:
            self.emit_json(health)
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
            for alert in health["experiment_alerts"]:
                self.stdout.write(f"ALERT experiment {alert['message']}")
            self.stdout.write("healthy" if health["healthy"] else "unhealthy")
        if not health["healthy"]:
            firing = len(health["active_alerts"]) + len(health["experiment_alerts"])
            raise CommandError(f"{firing} telemetry alert(s) firing", returncode=1)
