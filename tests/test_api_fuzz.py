"""Property-based testing of the whole API against its own OpenAPI schema (schemathesis), in
process, as an end user and as staff: no server error, no response outside the schema, and no
request the schema forbids accepted. Bounded by a fixed example count per operation, with
hypothesis derandomised so a run is repeatable."""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.factories.experiments import ActiveExperimentFactory
from tests.factories.users import UserFactory

EXAMPLES_PER_OPERATION = 20


def api_schema() -> dict:
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


# /api/health runs outside the request transaction, so an error there (a 405) would mark the
# test's own transaction for rollback; tests/test_health.py covers it, with the database down.
schema = schemathesis.openapi.from_dict(api_schema()).exclude(path="/api/health")
schema.app = get_wsgi_application()
fuzz_settings = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def token_for(user) -> str:
    response = APIClient().post(
        "/api/v1/auth/token",
        {"username": user.username, "password": "correct horse battery staple"},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()["token"]


@pytest.fixture
def fuzz_world(db, settings, catalog):
    settings.ALLOWED_HOSTS = ["localhost", "testserver"]
    ActiveExperimentFactory(key="blend")
    tokens = {
        "end_user": token_for(UserFactory(username="fuzz_end_user")),
        "staff": token_for(UserFactory(username="fuzz_staff", is_staff=True, is_superuser=True)),
    }
    # As Django's test client does (and undoes after each of its own requests, hence after the
    # logins above): a WSGI request must not close the test's connection and transaction.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield tokens
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def call_and_validate(case, token: str):
    # positive_data_acceptance is left out: a request of the right shape may still be refused
    # for what it means (a wrong password, an unknown user or experiment, a domain rule), and
    # that refusal is a documented 4xx in the one error shape, which the other checks verify.
    case.call_and_validate(
        headers={"Authorization": f"Token {token}"},
        excluded_checks=[positive_data_acceptance],
    )


@schema.parametrize()
@fuzz_settings
def test_api_as_an_end_user(case, fuzz_world):
    call_and_validate(case, fuzz_world["end_user"])


@schema.parametrize()
@fuzz_settings
def test_api_as_staff(case, fuzz_world):
    call_and_validate(case, fuzz_world["staff"])
