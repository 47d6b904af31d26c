from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission


class IsStaffWithModelPermission(BasePermission):
    """Staff may read; a write also needs the view's `change_permission` (Django model
    permission), which superusers always have. Anonymous callers get 401, others 403."""

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated and user.is_staff):
            return False
        if request.method in SAFE_METHODS:
            return True
        return user.has_perm(view.change_permission)


class ApiDocsPermission(BasePermission):
    """/api/docs/ and /api/schema/: everyone, or staff only when API_DOCS_STAFF_ONLY is set
    (read at each request). Staff come with their admin session or an API token."""

    def has_permission(self, request, view):
        if not settings.API_DOCS_STAFF_ONLY:
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)
