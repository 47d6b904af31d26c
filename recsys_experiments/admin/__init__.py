"""Admin registrations (autodiscovered): experiments with lifecycle actions and results, the
audit log, and the Assignments and Diagnostics pages (see admin_site.py)."""

from . import audit, experiment_admin  # noqa: F401 - registers the model admins
