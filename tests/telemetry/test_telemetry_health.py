import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.helpers import api_error_fields
from tests.telemetry.test_daily_views import dataset  # noqa: F401 - shared fixture


def test_healthy_when_nothing_fires(db):
    out = io.StringIO()
    call_command("telemetry_health", "--json", stdout=out)

    health = json.loads(out.getvalue())
    assert health["healthy"] is True
    assert health["active_alerts"] == []


def test_exit_1_and_the_figures_when_an_alert_fires(dataset):  # noqa: F811
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("telemetry_health", "--days", "2", "--json", stdout=out)

    health = json.loads(out.getvalue())
    assert raised.value.returncode == 1
    assert (health["impressions"], health["impressions_missing_experiments"]) == (4, 1)
    assert (health["outcomes"], health["outcomes_without_impression"]) == (6, 1)
    assert {a["alert"] for a in health["active_alerts"]} == {
        "untagged_impressions",
        "orphan_outcomes",
    }


def test_the_endpoint_gives_the_same_figures_to_staff_only(
    dataset,  # noqa: F811
    api_client,
    staff_user,
    user,
):
    assert api_client.get("/api/v1/admin/telemetry/health").status_code == 401
    api_client.force_authenticate(user)
    assert api_client.get("/api/v1/admin/telemetry/health").status_code == 403
    api_client.force_authenticate(staff_user)
    body = api_client.get("/api/v1/admin/telemetry/health?days=2").json()
    bad = api_client.get("/api/v1/admin/telemetry/health?days=zero")

    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("telemetry_health", "--days", "2", "--json", stdout=out)
    assert body == json.loads(out.getvalue())
    assert bad.status_code == 400 and "days" in api_error_fields(bad)
