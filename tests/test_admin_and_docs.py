from django.db import connection
from django.test.utils import CaptureQueriesContext


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
