from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    name = "telemetry"
    verbose_name = "Telemetry"

    def ready(self):
        # The admin site belongs to recsys_experiments, which must not import telemetry:
        # telemetry adds its pages (results, diagnostics) to it.
        from .admin_pages import register_admin_pages

        register_admin_pages()
