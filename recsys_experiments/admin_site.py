"""The Django admin, with every admin page running as the service database role."""

from functools import wraps

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.db import connection

from recsys_experiments.db_roles import SERVICE_ROLE, acting_as


class RecsysAdminSite(admin.AdminSite):
    site_header = "Recsys Experiments"
    site_title = "Recsys Experiments admin"
    index_title = "Experiments, assignments and telemetry"

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


class RecsysAdminConfig(AdminConfig):
    default_site = "recsys_experiments.admin_site.RecsysAdminSite"
