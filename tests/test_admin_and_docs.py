import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from knox.models import AuthToken


def test_admin_login_page_renders(client, db):
    response = client.get("/admin/login/")

    assert response.status_code == 200
    assert b"Password" in response.content


def test_admin_index_sends_anonymous_visitors_to_login(client, db):
    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_openapi_schema_renders_and_lists_health(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/health" in schema["paths"]


def test_api_docs_page_renders_without_a_cdn(client, db):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    assert b"cdn.jsdelivr.net" not in response.content


def test_admin_pages_run_as_the_service_role_and_see_users(client, staff_user, user):
    client.force_login(staff_user)

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/admin/accounts/user/")

    assert response.status_code == 200
    assert any("recsys_service" in query["sql"] for query in queries.captured_queries)
    assert user.username.encode() in response.content
    assert b"Recsys Experiments" in response.content


@pytest.mark.parametrize("path", ["/api/docs/", "/api/schema/"])
def test_api_docs_staff_only_turns_visitors_and_end_users_away(client, user, settings, path):
    settings.API_DOCS_STAFF_ONLY = True
    anonymous = client.get(path)
    client.force_login(user)
    end_user = client.get(path)

    assert anonymous.status_code == 401
    assert end_user.status_code == 403
    assert b"swagger" not in anonymous.content + end_user.content
    assert b"/api/v1/deck" not in anonymous.content + end_user.content


@pytest.mark.parametrize("path", ["/api/docs/", "/api/schema/"])
def test_api_docs_staff_only_still_serves_staff(client, staff_user, settings, path):
    settings.API_DOCS_STAFF_ONLY = True
    client.force_login(staff_user)

    assert client.get(path).status_code == 200


def test_api_docs_staff_only_accepts_a_staff_token(api_client, staff_user, settings):
    settings.API_DOCS_STAFF_ONLY = True
    _, key = AuthToken.objects.create(staff_user)

    response = api_client.get("/api/schema/", HTTP_AUTHORIZATION=f"Token {key}")

    assert response.status_code == 200


def test_the_admin_offers_knox_tokens_not_drfs_plain_text_ones(client, staff_user):
    client.force_login(staff_user)

    index = client.get("/admin/").content

    assert b"/admin/knox/authtoken/" in index
    assert b"/admin/authtoken/" not in index
