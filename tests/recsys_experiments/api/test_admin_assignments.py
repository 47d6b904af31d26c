"""The admin assignment API: /api/v1/admin/assignments[...]."""

import uuid

import pytest

from recsys_experiments.models import (
    Assignment,
    AssignmentMode,
    AuditAction,
    AuditEntry,
    ExperimentStatus,
)
from tests.factories.experiments import ActiveExperimentFactory, ExperimentFactory
from tests.factories.users import UserFactory
from tests.helpers import api_error_fields, assign, other_variant, stored

BASE = "/api/v1/admin/assignments"


@pytest.fixture
def admin_client(api_client, staff_user):
    api_client.force_authenticate(staff_user)
    return api_client


@pytest.fixture
def subject(db):
    return UserFactory(username="alice", email="Alice@Example.com")


@pytest.fixture
def experiment(db):
    return ActiveExperimentFactory(key="ranking_v2")


# --- permissions -----------------------------------------------------------------------------


def endpoints(subject):
    return [
        ("get", f"{BASE}?user={subject.username}", None),
        (
            "post",
            BASE,
            {"experiment_key": "ranking_v2", "user": subject.username, "variant": "control"},
        ),
        ("delete", f"{BASE}/ranking_v2/{subject.pk}", None),
    ]


def test_anonymous_caller_gets_401_on_every_endpoint(api_client, subject, experiment):
    for method, url, data in endpoints(subject):
        response = getattr(api_client, method)(url, data, format="json")
        assert response.status_code == 401, (method, url)


def test_non_staff_user_gets_403_on_every_endpoint(api_client, user, subject, experiment):
    api_client.force_authenticate(user)

    for method, url, data in endpoints(subject):
        response = getattr(api_client, method)(url, data, format="json")
        assert response.status_code == 403, (method, url)


def test_staff_without_change_permission_can_look_up_but_not_force_or_reset(
    api_client, subject, experiment
):
    api_client.force_authenticate(UserFactory(is_staff=True, is_superuser=False))
    variant = assign("ranking_v2", subject)

    lookup = api_client.get(BASE, {"user": "alice"})
    force = api_client.post(
        BASE,
        {"experiment_key": "ranking_v2", "user": "alice", "variant": other_variant(variant)},
        format="json",
    )
    reset = api_client.delete(f"{BASE}/ranking_v2/{subject.pk}")

    assert lookup.status_code == 200
    assert (force.status_code, reset.status_code) == (403, 403)
    assert stored(experiment, subject) == (variant, AssignmentMode.AUTO)
    assert not AuditEntry.objects.exists()


# --- look up ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "identifier",
    ["uuid", "alice", "alice@example.com", "ALICE@EXAMPLE.COM", "  alice  "],
)
def test_lookup_finds_the_user_by_uuid_username_or_email(
    admin_client, subject, experiment, identifier
):
    if identifier == "uuid":
        identifier = str(subject.pk)

    response = admin_client.get(BASE, {"user": identifier})

    assert response.status_code == 200
    assert response.json()["user"] == {
        "id": str(subject.pk),
        "username": "alice",
        "email": "Alice@Example.com",
    }
    assert set(response.json()) == {"user", "assignments", "active_experiments"}


def test_lookup_lists_assignments_and_active_experiments(admin_client, subject, staff_user):
    active = ActiveExperimentFactory(key="a_active")
    unassigned = ActiveExperimentFactory(key="b_unassigned")
    ended = ExperimentFactory(key="c_ended")
    ExperimentFactory(key="d_draft")
    auto_variant = assign("a_active", subject)
    admin_client.post(
        BASE,
        {"experiment_key": "c_ended", "user": "alice", "variant": "control"},
        format="json",
    )
    ended.status = ExperimentStatus.ENDED
    ended.save()

    data = admin_client.get(BASE, {"user": "alice"}).json()

    assignments = {row["experiment_key"]: row for row in data["assignments"]}
    assert set(assignments) == {"a_active", "c_ended"}
    assert assignments["a_active"]["variant"] == auto_variant
    assert assignments["a_active"]["assignment_mode"] == "auto"
    assert assignments["a_active"]["assigned_by"] is None
    assert assignments["c_ended"]["variant"] == "control"
    assert assignments["c_ended"]["assignment_mode"] == "manual"
    assert assignments["c_ended"]["assigned_by"] == staff_user.username
    active_rows = {row["experiment_key"]: row for row in data["active_experiments"]}
    assert set(active_rows) == {active.key, unassigned.key}
    assert active_rows["a_active"]["variant"] == auto_variant
    assert active_rows["a_active"]["hashed_variant"] == auto_variant
    assert active_rows["b_unassigned"]["variant"] is None
    assert active_rows["b_unassigned"]["assignment_mode"] == "unassigned"
    assert active_rows["b_unassigned"]["hashed_variant"] in {"control", "treatment"}
    assert active_rows["b_unassigned"]["targeted"] is False


@pytest.mark.parametrize("query", [{}, {"user": ""}, {"user": "   "}])
def test_lookup_without_user_is_400_naming_user(admin_client, query):
    UserFactory(username="no_email", email="")

    response = admin_client.get(BASE, query)

    assert response.status_code == 400
    assert "user" in api_error_fields(response)


@pytest.mark.parametrize("identifier", ["nobody", "nobody@example.com", str(uuid.uuid4())])
def test_lookup_of_an_unknown_user_is_404(admin_client, subject, identifier):
    response = admin_client.get(BASE, {"user": identifier})

    assert response.status_code == 404
    assert "detail" in response.json()


# --- force (manual override) -----------------------------------------------------------------


def test_force_creates_a_manual_override_that_assignment_then_returns(
    admin_client, staff_user, subject, experiment
):
    hashed = assign("ranking_v2", subject)
    forced = other_variant(hashed)

    response = admin_client.post(
        BASE,
        {"experiment_key": "ranking_v2", "user": "alice@example.com", "variant": forced},
        format="json",
    )

    assert response.status_code == 201
    data = response.json()
    assert data["experiment_key"] == "ranking_v2"
    assert data["user"] == str(subject.pk)
    assert data["variant"] == forced
    assert data["assignment_mode"] == "manual"
    assert data["assigned_by"] == staff_user.username
    assert data["assigned_at"]
    assert assign("ranking_v2", subject) == forced
    row = Assignment.objects.get(experiment=experiment, user=subject)
    assert (row.variant, row.assignment_mode, row.assigned_by) == (
        forced,
        AssignmentMode.MANUAL,
        staff_user,
    )
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.subject_user) == (
        AuditAction.OVERRIDE,
        staff_user,
        subject,
    )
    assert entry.before == {"variant": hashed, "assignment_mode": "auto"}
    assert entry.after == {"variant": forced, "assignment_mode": "manual"}


def test_force_works_on_a_draft_experiment(admin_client, subject):
    draft = ExperimentFactory(key="draft_one")

    response = admin_client.post(
        BASE,
        {"experiment_key": "draft_one", "user": "alice", "variant": "treatment"},
        format="json",
    )

    assert response.status_code == 201
    assert stored(draft, subject) == ("treatment", AssignmentMode.MANUAL)


def test_force_an_unknown_variant_is_400_naming_variant(admin_client, subject, experiment):
    response = admin_client.post(
        BASE,
        {"experiment_key": "ranking_v2", "user": "alice", "variant": "purple"},
        format="json",
    )

    assert response.status_code == 400
    assert "variant" in api_error_fields(response)
    assert not Assignment.objects.exists()
    assert not AuditEntry.objects.exists()


def test_force_in_an_unknown_experiment_is_404(admin_client, subject):
    response = admin_client.post(
        BASE,
        {"experiment_key": "nope", "user": "alice", "variant": "control"},
        format="json",
    )

    assert response.status_code == 404
    assert not AuditEntry.objects.exists()


def test_force_for_an_unknown_user_is_404(admin_client, experiment):
    response = admin_client.post(
        BASE,
        {"experiment_key": "ranking_v2", "user": "nobody", "variant": "control"},
        format="json",
    )

    assert response.status_code == 404


def test_force_in_an_ended_experiment_is_409(admin_client, subject):
    ended = ExperimentFactory(key="ended_one", status=ExperimentStatus.ENDED)

    response = admin_client.post(
        BASE,
        {"experiment_key": "ended_one", "user": "alice", "variant": "control"},
        format="json",
    )

    assert response.status_code == 409
    assert stored(ended, subject) is None
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    ("data", "missing"),
    [
        ({}, {"experiment_key", "user", "variant"}),
        ({"experiment_key": "ranking_v2"}, {"user", "variant"}),
        ({"experiment_key": "ranking_v2", "user": "alice"}, {"variant"}),
    ],
)
def test_force_with_missing_fields_is_400_naming_them(
    admin_client, subject, experiment, data, missing
):
    response = admin_client.post(BASE, data, format="json")

    assert response.status_code == 400
    assert set(api_error_fields(response)) == missing
    assert not Assignment.objects.exists()


# --- reset -----------------------------------------------------------------------------------


def test_reset_deletes_the_override_and_assignment_then_re_derives_auto(
    admin_client, staff_user, subject, experiment
):
    hashed = assign("ranking_v2", subject)
    admin_client.post(
        BASE,
        {"experiment_key": "ranking_v2", "user": "alice", "variant": other_variant(hashed)},
        format="json",
    )

    response = admin_client.delete(f"{BASE}/ranking_v2/{subject.pk}")

    assert response.status_code == 204
    assert stored(experiment, subject) is None
    assert assign("ranking_v2", subject) == hashed
    assert stored(experiment, subject) == (hashed, AssignmentMode.AUTO)
    entry = AuditEntry.objects.filter(action=AuditAction.RESET).get()
    assert (entry.actor, entry.subject_user) == (staff_user, subject)
    assert entry.before == {"variant": other_variant(hashed), "assignment_mode": "manual"}


def test_reset_without_an_assignment_is_204_and_writes_no_audit(admin_client, subject, experiment):
    response = admin_client.delete(f"{BASE}/ranking_v2/{subject.pk}")

    assert response.status_code == 204
    assert not AuditEntry.objects.exists()


def test_reset_of_an_unknown_experiment_or_user_is_404(admin_client, subject, experiment):
    assert admin_client.delete(f"{BASE}/nope/{subject.pk}").status_code == 404
    assert admin_client.delete(f"{BASE}/ranking_v2/{uuid.uuid4()}").status_code == 404
