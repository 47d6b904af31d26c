from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_partitions(sender, using, **kwargs):
    """After every migrate: this month's and next month's partitions exist (a fresh database,
    or one migrated after a long pause, never writes a month into the default partition)."""
    from .partitions import partitions_ensure

    partitions_ensure(months_ahead=1, using=using)


class TelemetryConfig(AppConfig):
    name = "telemetry"
    verbose_name = "Telemetry"

    def ready(self):
        post_migrate.connect(ensure_partitions, sender=self, dispatch_uid="telemetry-partitions")
        # The admin site belongs to recsys_experiments, which must not import telemetry:
        # telemetry adds its pages (results, diagnostics) to it.
        from .admin_pages import register_admin_pages

        register_admin_pages()

        from recsys_experiments.accounts.merge import RENAME, register_merge_table

        # What an anonymous install did joins the account it logs in to (accounts/merge.py).
        # Client event ids are unique per user: one the account already used is renamed.
        register_merge_table("rec_impressions")
        register_merge_table("rec_outcomes", unique_with_user="event_id", on_conflict=RENAME)
        register_merge_table("rec_conversions", unique_with_user="event_id", on_conflict=RENAME)
        register_merge_table("rec_exposures", unique_with_user="event_id", on_conflict=RENAME)
