"""The Django admin site (kept outside the admin package, whose import registers the model
admins on this very site): every admin page runs as the service database role, and the Recsys
section gains the Assignments and Diagnostics pages beside the registered models."""

from functools import wraps

from django.contrib import admin
from django.db import connection
from django.urls import path, reverse

from recsys_experiments.db_roles import SERVICE_ROLE, acting_as

RECSYS_APP = "recsys_experiments"


class RecsysAdminSite(admin.AdminSite):
    site_header = "Recsys Experiments"
    site_title = "Recsys Experiments admin"
    index_title = "Experiments, assignments and telemetry"
    # The sidebar would squeeze the experiment tables and charts at 1280 px.
    enable_nav_sidebar = False

    def admin_view(self, view, cacheable=False):
        checked_view = super().admin_view(view, cacheable)

        @wraps(view)
        def as_service(request, *args, **kwargs):
            user = request.user
            if user.is_active and user.is_staff and connection.in_atomic_block:
                with acting_as(SERVICE_ROLE, user.pk):
                    return checked_view(request, *args, **kwargs)
            return checked_view(request, *args, **kwargs)

        return as_service

    def get_urls(self):
        from recsys_experiments.admin.pages import assignments_view, diagnostics_view

        custom = [
            path(
                "recsys/assignments/",
                self.admin_view(assignments_view(self)),
                name="recsys_assignments",
            ),
            path(
                "recsys/diagnostics/",
                self.admin_view(diagnostics_view(self)),
                name="recsys_diagnostics",
            ),
        ]
        return custom + super().get_urls()

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        can_see = request.user.has_perm(f"{RECSYS_APP}.view_assignment") or request.user.has_perm(
            f"{RECSYS_APP}.change_assignment"
        )
        for app in apps:
            if app["app_label"] != RECSYS_APP:
                continue
            pages = [("Assignments", "recsys_assignments", can_see)]
            pages.append(("Diagnostics", "recsys_diagnostics", request.user.is_staff))
            for name, url_name, allowed in pages:
                if allowed:
                    app["models"].append(
                        {
                            "name": name,
                            "object_name": name,
                            "admin_url": reverse(f"admin:{url_name}"),
                            "view_only": True,
                            "perms": {"view": True},
                        }
                    )
            app["models"].sort(key=lambda model: model["name"])
        return apps
