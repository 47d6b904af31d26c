"""API base classes that run each request as a database role (see db_roles.py)."""

from django.db import connection
from rest_framework.views import APIView

from recsys_experiments.db_roles import (
    END_USER_ROLE,
    SERVICE_ROLE,
    restore_transaction_role,
    set_transaction_role,
)


class RoleScopedApi(APIView):
    """After authentication, permission and throttle checks, the view body runs as
    `database_role` with app.user_id = the caller, for the rest of the request's transaction.

    The settings are transaction-local (SET LOCAL), so the request's commit or rollback ends
    them whatever happens in between: nothing is held across DRF's hooks, which an exception
    may skip. Only when the transaction outlives the request (a caller's own transaction, as in
    tests) does `dispatch` restore the previous pair, and only after a normal return."""

    database_role: str

    def dispatch(self, request, *args, **kwargs):
        outlives_request = len(connection.atomic_blocks) > 1
        self._previous_role = None
        response = super().dispatch(request, *args, **kwargs)
        if outlives_request and self._previous_role is not None:
            restore_transaction_role(self._previous_role)
        return response

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self._previous_role = set_transaction_role(self.database_role, request.user.pk)


class EndUserApi(RoleScopedApi):
    """Mobile endpoints: row-level security limits every query to the caller's rows."""

    database_role = END_USER_ROLE


class ServiceApi(RoleScopedApi):
    """Admin endpoints: the service role, for staff only."""

    database_role = SERVICE_ROLE
