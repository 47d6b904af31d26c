"""The admin API's schedule fields, weight normalisation and DELETE of drafts."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from recsys_experiments.models import AuditAction, AuditEntry, Experiment
from recsys_experiments.services.assignments import assignment_override
from tests.factories.experiments import ActiveExperimentFactory, ExperimentFactory
from tests.factories.users import UserFactory
from tests.helpers import api_error_fields

BASE = "/api/v1/admin/experiments"


def body(*weights, **overrides):
    names = ("control", "treatment", "extra")
    return {
        "key": "blend_v3",
        "variants": [
            {"name": name, "weight": weight, "config": {}}
            for name, weight in zip(names, weights or (0.5, 0.5), strict=False)
        ],
        **overrides,
    }


@pytest.mark.parametrize(
    ("weights", "stored"),
    [((70, 30), [0.7, 0.3]), ((1, 1, 2), [0.25, 0.25, 0.5]), ((0.5, 0.5), [0.5, 0.5])],
)
def test_any_positive_weights_are_normalised_and_the_stored_ones_returned(
    admin_api_client, weights, stored
):
    response = admin_api_client.post(BASE, body(*weights), format="json")

    assert response.status_code == 201
    assert [v["weight"] for v in response.json()["variants"]] == stored
    assert [v["weight"] for v in Experiment.objects.get().variants] == stored
    patched = admin_api_client.patch(
        f"{BASE}/blend_v3",
        {
            "variants": [
                {**v, "weight": w}
                for v, w in zip(body(*weights)["variants"], (3, 1, 4), strict=False)
            ]
        },
        format="json",
    )
    assert patched.status_code == 200
    assert sum(v["weight"] for v in patched.json()["variants"]) == pytest.approx(1, abs=1e-12)


@pytest.mark.parametrize("weight", ["NaN", '"70"', "0", "-70", "Infinity", "true", "null"])
def test_weights_that_are_not_positive_numbers_are_400(admin_api_client, weight):
    raw = (
        '{"key": "blend_v3", "variants": [{"name": "a", "weight": '
        + weight
        + '}, {"name": "b", "weight": 30}]}'
    )
    response = admin_api_client.generic("POST", BASE, raw, content_type="application/json")

    assert response.status_code == 400
    api_error_fields(response)
    assert not Experiment.objects.exists()


def test_schedule_is_writable_and_shown(admin_api_client):
    start = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    created = admin_api_client.post(BASE, body(started_at=start.isoformat()), format="json")
    end = start + timedelta(days=7)
    patched = admin_api_client.patch(
        f"{BASE}/blend_v3", {"ended_at": end.isoformat()}, format="json"
    )
    put = admin_api_client.put(f"{BASE}/blend_v3", body(description="kept"), format="json")

    assert created.status_code == 201 and created.json()["status"] == "draft"
    assert created.json()["started_at"] == start.isoformat()
    assert patched.status_code == 200 and patched.json()["ended_at"] == end.isoformat()
    # A PUT that does not name the schedule leaves it alone.
    assert put.status_code == 200
    assert (put.json()["started_at"], put.json()["ended_at"]) == (
        start.isoformat(),
        end.isoformat(),
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"started_at": "2026-02-30T09:00:00Z"}, "started_at"),
        ({"started_at": "2030-13-01T09:00:00Z"}, "started_at"),
        ({"started_at": "2030-01-01T09:00:00"}, "started_at"),
        ({"started_at": "2001-01-01T09:00:00Z"}, "started_at"),
        ({"ended_at": ["2030-01-01T09:00:00Z"]}, "ended_at"),
        ({"ended_at": {"at": 1}}, "ended_at"),
        ({"ended_at": "2030-01-01T09:00:00Z\x00"}, "ended_at"),
        ({"started_at": "2031-01-02T00:00:00Z", "ended_at": "2031-01-01T00:00:00Z"}, "ended_at"),
    ],
)
def test_a_bad_schedule_is_400_naming_the_field(admin_api_client, change, field):
    ExperimentFactory(key="blend_v3")

    response = admin_api_client.patch(f"{BASE}/blend_v3", change, format="json")

    assert response.status_code == 400
    assert field in api_error_fields(response)
    assert Experiment.objects.get().started_at is None


def test_the_start_of_an_active_experiment_is_409(admin_api_client):
    ActiveExperimentFactory(key="live")

    response = admin_api_client.patch(
        f"{BASE}/live",
        {"started_at": (timezone.now() + timedelta(days=1)).isoformat()},
        format="json",
    )

    assert response.status_code == 409
    assert "fixed" in response.json()["detail"]


def test_delete_a_draft_is_204_and_audited(admin_api_client, staff_user):
    ExperimentFactory(key="blend_v3")

    response = admin_api_client.delete(f"{BASE}/blend_v3")

    assert response.status_code == 204
    assert admin_api_client.get(f"{BASE}/blend_v3").status_code == 404
    entry = AuditEntry.objects.get(action=AuditAction.DELETE)
    assert (entry.experiment_key, entry.actor, entry.source) == ("blend_v3", staff_user, "api")


@pytest.mark.parametrize("factory", [ActiveExperimentFactory, ExperimentFactory])
def test_delete_of_an_active_or_ended_experiment_is_409_with_the_reason(admin_api_client, factory):
    status = "active" if factory is ActiveExperimentFactory else "ended"
    factory(key="live", status=status)

    response = admin_api_client.delete(f"{BASE}/live")

    assert response.status_code == 409
    assert api_error_fields(response) == {}
    assert f"it is {status}; only drafts can be deleted" in response.json()["detail"]
    assert Experiment.objects.filter(key="live").exists()


def test_delete_of_no_such_experiment_is_404(admin_api_client):
    assert admin_api_client.delete(f"{BASE}/nothing_here").status_code == 404


def test_delete_needs_the_delete_permission(db, api_client):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(
        Permission.objects.get(codename="change_experiment"),
        Permission.objects.get(codename="add_experiment"),
    )
    api_client.force_authenticate(staff)
    ExperimentFactory(key="blend_v3")

    response = api_client.delete(f"{BASE}/blend_v3")

    assert response.status_code == 403
    assert Experiment.objects.exists()


def test_a_deleted_drafts_key_with_assignments_is_never_reused(admin_api_client):
    draft = ExperimentFactory(key="blend_v3")
    assignment_override(
        experiment=draft, user=UserFactory(), variant="control", actor=None, source="t"
    )
    assert admin_api_client.delete(f"{BASE}/blend_v3").status_code == 204

    response = admin_api_client.post(BASE, body(), format="json")

    assert response.status_code == 400
    assert "never reused" in api_error_fields(response)["key"][0]


def test_the_schema_documents_delete_with_the_error_envelope(admin_api_client):
    schema = admin_api_client.get("/api/schema/?format=json").json()

    operation = schema["paths"]["/api/v1/admin/experiments/{key}"]["delete"]
    assert "204" in operation["responses"]
    assert operation["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    fields = schema["components"]["schemas"]["ExperimentInputRequest"]["properties"]
    assert {"started_at", "ended_at"} <= set(fields)
