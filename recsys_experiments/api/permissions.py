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
