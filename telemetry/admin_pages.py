"""The admin pages that show telemetry, added to the admin from TelemetryConfig.ready():
recsys_experiments (a lower layer) owns the site and links to these pages by URL name only.

- admin:recsys_diagnostics, /admin/recsys/diagnostics/: is the telemetry path healthy?
- admin:recsys_power_calculator, /admin/recsys/power-calculator/: users and days an
  experiment needs (telemetry/results/calculator.py).
- admin:experiment_results, /admin/recsys_experiments/experiment/<id>/results/ (and
  by-key/<key>/results/): an experiment's results (telemetry/results/admin.py)."""

from __future__ import annotations

from django.contrib import admin
from django.template.response import TemplateResponse

from recsys_experiments.admin.experiment_admin import ExperimentAdmin, ExperimentPage
from recsys_experiments.db import reading, replica_status

from .results.admin import results_view
from .results.alerts import health_with_experiment_alerts
from .results.calculator import calculator_view


def diagnostics_view(site):
    def view(request):
        with reading():  # the read replica, when configured (recsys_experiments/db.py)
            health = health_with_experiment_alerts(days=7)
        context = {
            **site.each_context(request),
            "title": "Telemetry diagnostics",
            "health": health,
            "replica": replica_status(),
        }
        return TemplateResponse(request, "admin/recsys_experiments/diagnostics.html", context)

    return view


def is_staff(request) -> bool:
    return request.user.is_staff


def register_admin_pages() -> None:
    admin.site.register_page(
        "recsys/diagnostics/",
        diagnostics_view,
        "recsys_diagnostics",
        label="Diagnostics",
        allowed=is_staff,
    )
    admin.site.register_page(
        "recsys/power-calculator/",
        calculator_view,
        "recsys_power_calculator",
        label="Power calculator",
        allowed=is_staff,
    )
    ExperimentAdmin.add_page(
        ExperimentPage("results", results_view, "experiment_results", by_key=True)
    )
