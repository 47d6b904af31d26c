from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    name = "telemetry"
    verbose_name = "Telemetry"

    def ready(self):
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
