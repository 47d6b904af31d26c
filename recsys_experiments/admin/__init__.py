"""Admin registrations (autodiscovered): experiments with lifecycle actions, the audit log,
and the Assignments page (see admin_site.py). Telemetry adds the results and Diagnostics
pages from its AppConfig.ready() (telemetry/admin_pages.py)."""

from django.contrib import admin

from . import audit, experiment_admin  # noqa: F401 - registers the model admins
from .pages import assignments_view, may_see_assignments

admin.site.register_page(
    "recsys/assignments/",
    assignments_view,
    "recsys_assignments",
    label="Assignments",
    allowed=may_see_assignments,
)
