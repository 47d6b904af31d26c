"""Real-browser tests: `browser` drives headless Chromium against pytest-django's live server.

Using `browser` brings in `live_server`, hence a transactional database: what the test creates is
committed, so the server thread sees it. Rows the migrations insert are restored for each test
(serialized rollback), so pages look as they do on a freshly migrated database.

Without Debian's chromium and chromium-driver the tests skip, except under CI=true, where they
fail: CI must never pass by not running them.
"""

import pytest
from django.db import connections

from tests.e2e.chromium import INSTALL_HINT, missing_binaries, reset, start_chromium
from tests.helpers import skip_outside_ci


@pytest.fixture(scope="session")
def chromium_session():
    """One Chromium for the whole run (a start costs about a second); `browser` resets it."""
    missing = missing_binaries()
    if missing:
        skip_outside_ci(f"e2e: {' and '.join(missing)} not installed ({INSTALL_HINT})")
    with start_chromium() as driver:
        yield driver


@pytest.fixture(scope="session")
def live_server_closes_connections():
    """The live server serves each browser connection in a thread of its own, and Chromium keeps
    connections alive between pages: with CONN_MAX_AGE those threads would keep database sessions
    open after the run, and the test database could not be dropped."""
    saved = {alias: connections.settings[alias].get("CONN_MAX_AGE") for alias in connections}
    for alias in saved:
        connections.settings[alias]["CONN_MAX_AGE"] = 0
    yield
    for alias, value in saved.items():
        connections.settings[alias]["CONN_MAX_AGE"] = value


@pytest.fixture
def browser(
    chromium_session, live_server_closes_connections, live_server, django_db_serialized_rollback
):
    reset(chromium_session)
    yield chromium_session
    reset(chromium_session)
