"""API base classes that run each request as a database role (see db_roles.py)."""

from contextlib import ExitStack

from rest_framework.views import APIView

from recsys_experiments.db_roles import END_USER_ROLE, SERVICE_ROLE, acting_as


class RoleScopedApi(APIView):
    """After authentication and permission checks, the view body runs as `database_role`
    with app.user_id = the caller, until the response is finalised."""

    database_role: str

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self._role_scope = ExitStack()
        self._role_scope.enter_context(acting_as(self.database_role, request.user.pk))

    def finalize_response(self, request, response, *args, **kwargs):
        scope = getattr(self, "_role_scope", None)
        if scope is not None:
            scope.close()
            self._role_scope = None
        return super().finalize_response(request, response, *args, **kwargs)


class EndUserApi(RoleScopedApi):
    """Mobile endpoints: row-level security limits every query to the caller's rows."""

    database_role = END_USER_ROLE


class ServiceApi(RoleScopedApi):
    """Admin endpoints: the service role, for staff only."""

    database_role = SERVICE_ROLE
