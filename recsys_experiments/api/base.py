"""API base classes that run each request as a database role (see db_roles.py)."""

from django.db import connection
from rest_framework.views import APIView

from recsys_experiments.accounts.authentication import ApiTokenAuthentication
from recsys_experiments.db_roles import (
    END_USER_ROLE,
    SERVICE_ROLE,
    restore_transaction_role,
    set_transaction_role,
)


class RoleScopedApi(APIView):
    """The view body runs as `database_role` with app.user_id = the caller, for the rest of
    the request's transaction. End-user views (`role_at_authentication`) get both from the
    statement that authenticates their API token, before the permission and throttle checks
    (neither touches the request's connection: the throttles count on their own); other views
    and other authentication (a session, a forced user in tests) set them after those checks.

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

    # The end-user views let token authentication set their role in the token's own
    # statement (accounts/authentication.py): one round trip less per request. The admin views
    # set theirs after the permission check, as before.
    role_at_authentication = False

    def get_authenticators(self):
        authenticators = super().get_authenticators()
        if self.role_at_authentication:
            for authenticator in authenticators:
                if isinstance(authenticator, ApiTokenAuthentication):
                    authenticator.database_role = self.database_role
        return authenticators

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        authenticator = request.successful_authenticator
        previous = getattr(authenticator, "previous_role", None)
        if previous is not None and getattr(authenticator, "database_role", None) == (
            self.database_role
        ):
            self._previous_role = previous  # set with the token, for request.user
        else:
            self._previous_role = set_transaction_role(self.database_role, request.user.pk)


class EndUserApi(RoleScopedApi):
    """Mobile endpoints: row-level security limits every query to the caller's rows."""

    database_role = END_USER_ROLE
    role_at_authentication = True


class ServiceApi(RoleScopedApi):
    """Admin endpoints: the service role, for staff only."""

    database_role = SERVICE_ROLE
