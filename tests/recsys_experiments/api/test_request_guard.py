"""Whatever a client sends, the API answers a 4xx in its one JSON error shape, naming the field
or parameter at fault, and never a 500 (api/errors.py, api/parsers.py, api/middleware.py)."""

from __future__ import annotations

import pytest
from django.db import DataError

from recsys_experiments.api.errors import api_exception_handler
from tests.factories.experiments import ActiveExperimentFactory

ERROR_KEYS = {"status", "code", "detail", "errors"}


def assert_error(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["status"] == status and body["detail"]
    if field is not None:
        assert any(path.startswith(field) for path in body["errors"]), body
    return body


def deeply_nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def raw_post(client, path: str, body: bytes, content_type: str = "application/json"):
    return client.generic("POST", path, body, content_type=content_type)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (deeply_nested(100_000), "body"),
        (b'{"username": ' + deeply_nested(40) + b', "password": "x"}', "username[0]"),
        (b'{"username": "\\ud800", "password": "x"}', "username"),
        (b'{"username": "a", "password": "\\udfff"}', "password"),
        (b'{"username": "a", "password": NaN}', "body"),
        (b'{"username": "a", "password": Infinity}', "body"),
        (b'{"username": ', "body"),
        (b"\xff\xfe\x00garbage", "body"),
    ],
)
def test_malformed_json_is_a_400_naming_the_body_or_path_even_before_login(
    db, api_client, body, field
):
    assert_error(raw_post(api_client, "/api/v1/auth/token", body), 400, field)


@pytest.mark.parametrize("text", [b"\\ud800", b"a\\u0000b"])
def test_unstorable_text_deep_in_a_body_is_named_by_its_path(admin_api_client, text):
    body = b'{"key": "k_1", "variants": [{"name": "a", "weight": 1, "config": {"x": "' + text
    response = raw_post(admin_api_client, "/api/v1/admin/experiments", body + b'"}}]}')

    assert_error(response, 400, "variants[0].config.x")


def test_a_body_over_the_limit_is_a_json_413(app_client, settings):
    settings.API_MAX_BODY_BYTES = 1000
    body = b'{"limit": 5, "pad": "' + b"x" * 2000 + b'"}'

    assert_error(raw_post(app_client, "/api/v1/deck", body), 413)


def test_a_ten_megabyte_body_is_a_json_413(app_client):
    body = b'{"outcomes": ["' + b"x" * 10_000_000 + b'"]}'

    assert_error(raw_post(app_client, "/api/v1/outcomes", body), 413)


def test_a_body_that_is_not_json_is_a_415(app_client):
    response = raw_post(app_client, "/api/v1/deck", b"limit=5", "application/x-www-form-urlencoded")

    assert_error(response, 415)


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/nothing/here", "/api/v1/deck/extra"])
def test_unknown_api_paths_are_a_json_404_in_production_and_in_debug(
    app_client, settings, path, debug
):
    settings.DEBUG = debug

    assert_error(app_client.get(path), 404)


def test_a_wrong_method_is_a_json_405(app_client):
    assert_error(app_client.get("/api/v1/deck"), 405)


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/v1/admin/experiments/ab%00cd", "path"),
        ("/api/v1/admin/experiments/ab%00cd/metrics", "path"),
        ("/api/v1/admin/assignments?user=%00", "user"),
        ("/api/v1/admin/assignments?user=al%00ice", "user"),
        ("/api/v1/admin/experiments?status=%00", "status"),
        ("/api/v1/admin/experiments?st%00atus=draft", "st\\x00atus"),
    ],
)
def test_a_nul_byte_in_the_path_or_query_is_a_400_naming_it(admin_api_client, path, parameter):
    assert_error(admin_api_client.get(path), 400, parameter)


@pytest.mark.parametrize("days", ["%C2%B2", "%D9%A3", "0", "367", "-1", "1.5", "seven", ""])
def test_metrics_days_must_be_ascii_digits_in_range(admin_api_client, days):
    ActiveExperimentFactory(key="blend")

    response = admin_api_client.get(f"/api/v1/admin/experiments/blend/metrics?days={days}")

    assert_error(response, 400, "days")


@pytest.mark.parametrize(
    "path", ["/admin/recsys_experiments/experiment/?q=%00", "/admin/?next=%00", "/admin/%00/"]
)
def test_a_nul_byte_in_an_admin_url_is_no_server_error(admin_client, path):
    assert admin_client.get(path).status_code < 500


def test_a_value_the_database_refuses_is_a_400_not_a_500():
    response = api_exception_handler(DataError("PostgreSQL text cannot contain NUL"), {})

    assert response.status_code == 400
    assert set(response.data) == ERROR_KEYS and "body" in response.data["errors"]


def test_every_api_operation_documents_the_error_shape_for_each_status(admin_api_client):
    schema = admin_api_client.get("/api/schema/?format=json").json()

    assert set(schema["components"]["schemas"]["Error"]["required"]) == ERROR_KEYS
    operations = [
        (path, method, operation)
        for path, methods in schema["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in methods.items()
    ]
    assert len(operations) >= 15
    for path, method, operation in operations:
        for status in ("400", "401", "403", "404", "409", "413", "429", "503"):
            content = operation["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (path, method)
        assert "Retry-After" in operation["responses"]["429"]["headers"]
