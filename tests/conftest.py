import os

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories.catalog import MediaItemFactory
from tests.factories.users import UserFactory
from tests.helpers import skip_outside_ci

DATABASE_FIXTURES = {"db", "transactional_db", "live_server"}


def _uses_database(item) -> bool:
    return item.get_closest_marker("django_db") is not None or bool(
        DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
    )


def pytest_collection_modifyitems(items):
    """Requests count rate limits and failed logins on a connection of their own
    (settings.AUTOCOMMIT_DATABASE, a mirror of the test database): every database test may
    use it; the tests using the `replica` fixture may use settings.REPLICA_DATABASE too."""
    for item in items:
        if not _uses_database(item):
            continue
        marker = item.get_closest_marker("django_db")
        kwargs = dict(marker.kwargs) if marker else {}
        if kwargs.get("databases") in (None, ["default"], ("default",), {"default"}):
            kwargs["databases"] = ["default", settings.AUTOCOMMIT_DATABASE]
            # The read-replica tests' standby (fixture `replica`, below).
            if "replica" in getattr(item, "fixturenames", ()):
                kwargs["databases"].append(settings.REPLICA_DATABASE)
            args = marker.args if marker else ()
            item.add_marker(pytest.mark.django_db(*args, **kwargs), append=False)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    yield
    # The autocommit connection is a second session on the test database, which could not be
    # dropped while it is open.
    name = connections["default"].settings_dict["NAME"]
    connections.close_all()
    if os.environ.get("RECSYS_PGBOUNCER_SOCKET"):
        # Behind PgBouncer (make test's pooled step) its server connections hold it open too.
        from config.localdb import PgBouncer

        PgBouncer().release(name)


@pytest.fixture(autouse=True)
def fresh_security_counters(request, settings):
    """Rate-limit counters and failed logins are committed at once on their own connection,
    so they outlive a test's transaction: each test starts with none, and with rate limits
    too high to matter (tests/recsys_experiments/api/test_throttling.py sets low ones)."""
    settings.API_THROTTLE_RATES = dict.fromkeys(settings.API_THROTTLE_RATES, "100000/min")
    if _uses_database(request.node):
        request.getfixturevalue("_django_db_helper")
        cache.clear()
        for model in (AccessAttempt, AccessLog, AccessFailureLog):
            model.objects.all().delete()


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Factories hash a password per user; PBKDF2 would dominate the run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def catalog(db):
    return MediaItemFactory.create_batch(120)


@pytest.fixture
def app_user(db):
    return UserFactory()


@pytest.fixture
def app_client(app_user) -> APIClient:
    """A mobile client authenticated the way the app is: with its token."""
    client = APIClient()
    _, key = AuthToken.objects.create(user=app_user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def admin_api_client(api_client, staff_user) -> APIClient:
    """The admin API as a superuser."""
    api_client.force_authenticate(staff_user)
    return api_client


@pytest.fixture
def admin(client, staff_user):
    """The Django admin as a superuser (a session login, as a browser has)."""
    client.force_login(staff_user)
    return client


@pytest.fixture(scope="session")
def streaming_standby(django_db_setup, django_db_blocker):
    """A real streaming hot standby of the embedded test cluster (config/localdb.py Standby:
    pg_basebackup -R, its own socket and port), for the session; deleted afterwards. Skipped
    when the tests run on another database (DATABASE_URL not the local cluster)."""
    from config.localdb import Cluster, Standby
    from recsys_experiments.db import server

    cluster = Cluster()
    if server(connections["default"].settings_dict)[0] != str(cluster.socket_dir):
        skip_outside_ci("the standby tests need the embedded cluster (config/localdb.py)")
    from tests.standby import Replica

    standby = Standby(cluster)
    standby.start()
    Replica.register()
    yield standby
    with django_db_blocker.unblock():
        Replica.unregister()
        connections.close_all()
    standby.stop()


@pytest.fixture
def replica(streaming_standby):
    """The `replica` alias on the standby for one test (tests/standby.py), caught up with the
    primary. Use with @pytest.mark.django_db(transaction=True): only committed data reaches a
    standby (the alias is added to the test's databases by pytest_collection_modifyitems)."""
    from tests.standby import Replica

    replica = Replica(streaming_standby)
    replica.attach()
    try:
        replica.catch_up()
        yield replica
    finally:
        replica.detach()
