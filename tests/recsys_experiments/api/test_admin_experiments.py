"""The admin experiment API: /api/v1/admin/experiments[...]."""

import json

import pytest

from recsys_experiments.models import (
    Assignment,
    AssignmentMode,
    AuditAction,
    AuditEntry,
    Experiment,
    ExperimentStatus,
)
from tests.factories.experiments import ActiveExperimentFactory, ExperimentFactory
from tests.factories.users import UserFactory
from tests.helpers import REPRESENTATION_FIELDS, api_error_fields, assign

BASE = "/api/v1/admin/experiments"
# Every admin experiment endpoint, with a body a permitted caller could send.
ENDPOINTS = [
    ("get", BASE, None),
    ("post", BASE, {"key": "new_one", "variants": []}),
    ("get", f"{BASE}/some_key", None),
    ("put", f"{BASE}/some_key", {"key": "some_key"}),
    ("patch", f"{BASE}/some_key", {"description": "x"}),
    ("post", f"{BASE}/some_key/activate", None),
    ("post", f"{BASE}/some_key/end", None),
    ("post", f"{BASE}/some_key/duplicate", None),
    ("post", f"{BASE}/some_key/rotate-salt", {"confirm": True}),
    ("delete", f"{BASE}/some_key", None),
]


def variants(*weights, names=("control", "treatment", "extra")):
    return [
        {"name": name, "weight": weight, "config": {}}
        for name, weight in zip(names, weights, strict=False)
    ]


def body(**overrides):
    return {
        "key": "ranking_v2",
        "description": "New ranking",
        "variants": variants(0.5, 0.5),
        **overrides,
    }


def call(client, method, url, data=None):
    return getattr(client, method)(url, data, format="json")


def audit_actions(key):
    return list(
        AuditEntry.objects.filter(experiment_key=key)
        .order_by("id")
        .values_list("action", flat=True)
    )


@pytest.fixture
def admin_client(api_client, staff_user):
    api_client.force_authenticate(staff_user)
    return api_client


@pytest.fixture
def read_only_staff(db):
    """Staff, not a superuser, without any model permission."""
    return UserFactory(is_staff=True, is_superuser=False)


# --- permissions -----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "url", "data"), ENDPOINTS)
def test_anonymous_caller_gets_401_on_every_endpoint(db, api_client, method, url, data):
    response = call(api_client, method, url, data)

    assert response.status_code == 401


@pytest.mark.parametrize(("method", "url", "data"), ENDPOINTS)
def test_non_staff_user_gets_403_on_every_endpoint(api_client, user, method, url, data):
    ExperimentFactory(key="some_key")
    api_client.force_authenticate(user)

    response = call(api_client, method, url, data)

    assert response.status_code == 403


def test_staff_without_change_permission_can_read(api_client, read_only_staff):
    ExperimentFactory(key="some_key")
    api_client.force_authenticate(read_only_staff)

    listing = api_client.get(BASE)
    detail = api_client.get(f"{BASE}/some_key")

    assert listing.status_code == 200
    assert [row["key"] for row in listing.json()] == ["some_key"]
    assert detail.status_code == 200
    assert detail.json()["key"] == "some_key"


@pytest.mark.parametrize(
    ("method", "url", "data"), [endpoint for endpoint in ENDPOINTS if endpoint[0] != "get"]
)
def test_staff_without_change_permission_cannot_write(
    api_client, read_only_staff, method, url, data
):
    ExperimentFactory(key="some_key")
    api_client.force_authenticate(read_only_staff)

    response = call(api_client, method, url, data)

    assert response.status_code == 403
    assert list(Experiment.objects.values_list("key", "status")) == [("some_key", "draft")]
    assert not AuditEntry.objects.exists()


def staff_with(*codenames):
    from django.contrib.auth.models import Permission

    member = UserFactory(is_staff=True)
    member.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return member


def test_creating_needs_the_add_permission_and_lifecycle_the_change_permission(db, api_client):
    api_client.force_authenticate(staff_with("add_experiment"))
    created = api_client.post(BASE, body(), format="json")
    activate_denied = api_client.post(f"{BASE}/ranking_v2/activate")

    api_client.force_authenticate(staff_with("change_experiment"))
    create_denied = api_client.post(BASE, body(key="other_key"), format="json")
    activated = api_client.post(f"{BASE}/ranking_v2/activate")

    assert (created.status_code, activate_denied.status_code) == (201, 403)
    assert (create_denied.status_code, activated.status_code) == (403, 200)


def test_superuser_can_create_activate_and_end(admin_client):
    created = admin_client.post(BASE, body(), format="json")
    activated = admin_client.post(f"{BASE}/ranking_v2/activate")
    ended = admin_client.post(f"{BASE}/ranking_v2/end")

    assert (created.status_code, activated.status_code, ended.status_code) == (201, 200, 200)


# --- create ----------------------------------------------------------------------------------


def test_create_returns_201_with_the_full_representation(admin_client, staff_user):
    response = admin_client.post(
        BASE,
        body(
            salt="fixed-salt",
            traffic=0.4,
            namespace={"name": "home", "start": 0, "end": 0.5},
            targeting={"platform": "ios", "min_app_version": "1.4"},
        ),
        format="json",
    )

    assert response.status_code == 201
    data = response.json()
    assert set(data) == REPRESENTATION_FIELDS
    assert data["key"] == "ranking_v2"
    assert data["description"] == "New ranking"
    assert data["status"] == "draft"
    assert data["variants"] == [
        {"name": "control", "weight": 0.5, "config": {}},
        {"name": "treatment", "weight": 0.5, "config": {}},
    ]
    assert data["salt"] == "fixed-salt"
    assert data["traffic"] == 0.4
    assert data["namespace"] == {"name": "home", "start": 0.0, "end": 0.5}
    assert data["targeting"] == {"platform": "ios", "min_app_version": "1.4"}
    assert data["started_at"] is None
    assert data["ended_at"] is None
    assert data["created_at"] is not None
    assert data["updated_at"] is not None
    experiment = Experiment.objects.get(key="ranking_v2")
    assert experiment.created_by == staff_user
    assert experiment.platform == "ios"
    assert experiment.namespace_end == 0.5


def test_create_generates_a_salt_when_omitted(admin_client):
    first = admin_client.post(BASE, body(key="first_one"), format="json").json()
    second = admin_client.post(BASE, body(key="second_one"), format="json").json()

    assert first["salt"]
    assert second["salt"]
    assert first["salt"] != second["salt"]
    assert Experiment.objects.get(key="first_one").salt == first["salt"]


def test_create_defaults_traffic_namespace_and_targeting(admin_client):
    data = admin_client.post(BASE, body(), format="json").json()

    assert data["traffic"] == 1.0
    assert data["namespace"] is None
    assert data["targeting"] == {}


def test_create_keeps_weights_that_sum_to_one(admin_client):
    response = admin_client.post(BASE, body(variants=variants(0.3, 0.7)), format="json")

    assert response.status_code == 201
    assert [v["weight"] for v in response.json()["variants"]] == pytest.approx([0.3, 0.7])
    stored = Experiment.objects.get(key="ranking_v2").variants
    assert [v["weight"] for v in stored] == pytest.approx([0.3, 0.7])


def test_create_normalises_weights_summing_to_nearly_one(admin_client):
    response = admin_client.post(BASE, body(variants=variants(0.495, 0.5)), format="json")

    assert response.status_code == 201
    weights = [v["weight"] for v in Experiment.objects.get(key="ranking_v2").variants]
    assert sum(weights) == pytest.approx(1, abs=1e-9)
    assert weights == pytest.approx([0.495 / 0.995, 0.5 / 0.995])
    assert [v["weight"] for v in response.json()["variants"]] == pytest.approx(weights)


def test_create_writes_a_create_audit_entry_by_the_caller(admin_client, staff_user):
    admin_client.post(BASE, body(), format="json")

    entry = AuditEntry.objects.get()
    assert entry.action == AuditAction.CREATE
    assert entry.actor == staff_user
    assert entry.source == "api"
    assert entry.experiment_key == "ranking_v2"
    assert entry.after["key"] == "ranking_v2"


@pytest.mark.parametrize(
    ("overrides", "bad_field"),
    [
        ({"key": "Bad Key!"}, "key"),
        ({"variants": variants(1.0)}, "variants"),
        (
            {
                "variants": [
                    {"name": "same", "weight": 0.5, "config": {}},
                    {"name": "same", "weight": 0.5, "config": {}},
                ]
            },
            "variants[1].name",
        ),
        ({"variants": variants(0, 1.0)}, "variants[0].weight"),
        ({"variants": variants(-1, 1.0)}, "variants[0].weight"),
        ({"variants": variants("70", 30)}, "variants[0].weight"),
        ({"variants": variants(1e308, 1e308)}, "variants"),
        (
            {
                "variants": [
                    {"name": "control", "weight": 0.5, "config": "not an object"},
                    {"name": "treatment", "weight": 0.5, "config": {}},
                ]
            },
            "variants[0].config",
        ),
        (
            {
                "variants": [
                    {"name": "control", "weight": 0.5, "config": {"warp_speed": 9}},
                    {"name": "treatment", "weight": 0.5, "config": {}},
                ]
            },
            "variants[0].config.warp_speed",
        ),
        ({"traffic": 1.5}, "traffic"),
        ({"namespace": {"name": "home", "start": 0.5, "end": 0.5}}, "namespace"),
        ({"namespace": {"name": "home", "start": 0.7, "end": 0.2}}, "namespace"),
        ({"targeting": {"platform": "symbian"}}, "targeting.platform"),
        ({"targeting": {"min_app_version": "1.x"}}, "targeting.min_app_version"),
    ],
)
def test_create_with_a_bad_field_is_400_naming_it_and_changes_nothing(
    admin_client, overrides, bad_field
):
    response = admin_client.post(BASE, body(**overrides), format="json")

    assert response.status_code == 400
    assert bad_field in api_error_fields(response)
    assert not Experiment.objects.exists()
    assert not AuditEntry.objects.exists()


def test_create_names_every_bad_field_at_once(admin_client):
    response = admin_client.post(
        BASE,
        {
            "key": "Bad Key!",
            "variants": variants(0, 0.4),
            "traffic": 1.5,
            "namespace": {"name": "home", "start": 0.6, "end": 0.6},
            "targeting": {"platform": "symbian", "min_app_version": "1.x"},
        },
        format="json",
    )

    assert response.status_code == 400
    assert set(api_error_fields(response)) == {
        "key",
        "variants[0].weight",
        "traffic",
        "namespace",
        "targeting.platform",
        "targeting.min_app_version",
    }
    assert not Experiment.objects.exists()
    assert not AuditEntry.objects.exists()


def test_create_with_a_body_that_is_not_an_object_is_400(admin_client):
    response = admin_client.post(BASE, [body()], format="json")

    assert response.status_code == 400
    assert "body" in api_error_fields(response)


def test_create_with_a_taken_key_is_400_naming_key(admin_client):
    ExperimentFactory(key="ranking_v2")

    response = admin_client.post(BASE, body(), format="json")

    assert response.status_code == 400
    assert "key" in api_error_fields(response)
    assert Experiment.objects.filter(key="ranking_v2").count() == 1
    assert not AuditEntry.objects.exists()


# --- read ------------------------------------------------------------------------------------


def test_unknown_key_is_404(admin_client):
    assert admin_client.get(f"{BASE}/nope").status_code == 404
    assert (
        admin_client.patch(f"{BASE}/nope", {"description": "x"}, format="json").status_code == 404
    )
    assert admin_client.post(f"{BASE}/nope/activate").status_code == 404
    assert admin_client.post(f"{BASE}/nope/end").status_code == 404
    assert admin_client.post(f"{BASE}/nope/duplicate").status_code == 404
    assert (
        admin_client.post(f"{BASE}/nope/rotate-salt", {"confirm": True}, format="json").status_code
        == 404
    )


def test_detail_returns_the_representation(admin_client):
    experiment = ExperimentFactory(key="ranking_v2", salt="abc")

    response = admin_client.get(f"{BASE}/ranking_v2")

    assert response.status_code == 200
    data = response.json()
    assert set(data) == REPRESENTATION_FIELDS
    assert data["salt"] == "abc"
    assert data["variants"] == experiment.variants


def test_list_filters_by_status_and_counts_users(admin_client, user):
    ExperimentFactory(key="a_draft")
    ActiveExperimentFactory(key="b_active")
    assign("b_active", user)

    everything = admin_client.get(BASE).json()
    active = admin_client.get(BASE, {"status": "active"}).json()

    assert [row["key"] for row in everything] == ["a_draft", "b_active"]
    assert [(row["key"], row["enrolled_users"], row["manual_users"]) for row in active] == [
        ("b_active", 1, 0)
    ]
    assert admin_client.get(BASE, {"status": "paused"}).status_code == 400


# --- lifecycle -------------------------------------------------------------------------------


def test_activate_draft_makes_it_active_with_started_at(admin_client, staff_user):
    ExperimentFactory(key="ranking_v2")

    response = admin_client.post(f"{BASE}/ranking_v2/activate")

    assert response.status_code == 200
    assert response.json()["status"] == "active"
    assert response.json()["started_at"] is not None
    experiment = Experiment.objects.get(key="ranking_v2")
    assert experiment.status == ExperimentStatus.ACTIVE
    assert experiment.started_at is not None
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor) == (AuditAction.ACTIVATE, staff_user)


def test_end_active_sets_ended_at(admin_client, staff_user):
    ActiveExperimentFactory(key="ranking_v2")

    response = admin_client.post(f"{BASE}/ranking_v2/end")

    assert response.status_code == 200
    assert response.json()["status"] == "ended"
    assert response.json()["ended_at"] is not None
    assert Experiment.objects.get(key="ranking_v2").ended_at is not None
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor) == (AuditAction.END, staff_user)


# The lifecycle rules are tested where they live (lib/experiment_rules.py, the services);
# here, that each refusal is a 409 naming the reason and changing nothing.
@pytest.mark.parametrize(
    ("status", "method", "path", "data", "reason"),
    [
        (
            "active",
            "post",
            "/activate",
            None,
            'cannot activate experiment "ranking_v2": it is active',
        ),
        ("ended", "post", "/activate", None, "it is ended (duplicate it to run it again)"),
        ("draft", "post", "/end", None, 'cannot end experiment "ranking_v2": it is draft'),
        ("active", "patch", "", {"key": "ranking_v3"}, 'the key of active experiment "ranking_v2"'),
        ("ended", "patch", "", {"traffic": 0.5}, "only its description can change"),
        ("ended", "post", "/rotate-salt", {"confirm": True}, "its salt is final"),
    ],
)
def test_a_refused_lifecycle_step_is_409_and_changes_nothing(
    admin_client, status, method, path, data, reason
):
    ExperimentFactory(key="ranking_v2", status=status, salt="final")

    response = call(admin_client, method, f"{BASE}/ranking_v2{path}", data)

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert reason in response.json()["detail"]
    assert response.json()["errors"] == {}
    after = Experiment.objects.get()
    assert (after.key, after.status, after.salt, after.traffic) == (
        "ranking_v2",
        status,
        "final",
        1.0,
    )
    assert not AuditEntry.objects.exists()


def test_duplicate_ended_makes_a_new_draft_with_copy_key_and_new_salt(admin_client, staff_user):
    original = ExperimentFactory(
        key="ranking_v2",
        status=ExperimentStatus.ENDED,
        variants=variants(0.3, 0.7),
        traffic=0.5,
    )

    response = admin_client.post(f"{BASE}/ranking_v2/duplicate")

    assert response.status_code == 201
    data = response.json()
    assert data["key"] == "ranking_v2_copy"
    assert data["status"] == "draft"
    assert data["started_at"] is None
    assert data["ended_at"] is None
    assert data["variants"] == original.variants
    assert data["traffic"] == 0.5
    assert data["salt"] != original.salt
    assert Experiment.objects.get(key="ranking_v2").status == ExperimentStatus.ENDED
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.experiment_key) == (
        AuditAction.DUPLICATE,
        staff_user,
        "ranking_v2_copy",
    )
    assert entry.before == {"duplicated_from": "ranking_v2"}


def test_duplicate_takes_the_new_key_from_the_body(admin_client):
    ExperimentFactory(key="ranking_v2", status=ExperimentStatus.ENDED)

    response = admin_client.post(
        f"{BASE}/ranking_v2/duplicate", {"key": "ranking_v3"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["key"] == "ranking_v3"
    assert Experiment.objects.filter(key="ranking_v3", status="draft").exists()


def test_duplicate_twice_picks_the_next_free_copy_key(admin_client):
    ExperimentFactory(key="ranking_v2")

    first = admin_client.post(f"{BASE}/ranking_v2/duplicate").json()
    second = admin_client.post(f"{BASE}/ranking_v2/duplicate").json()

    assert (first["key"], second["key"]) == ("ranking_v2_copy", "ranking_v2_copy2")


@pytest.mark.parametrize("new_key", ["Bad Key!", "taken"])
def test_duplicate_with_a_bad_or_taken_key_is_400_naming_key(admin_client, new_key):
    ExperimentFactory(key="ranking_v2")
    ExperimentFactory(key="taken")

    response = admin_client.post(f"{BASE}/ranking_v2/duplicate", {"key": new_key}, format="json")

    assert response.status_code == 400
    assert "key" in api_error_fields(response)
    assert Experiment.objects.count() == 2
    assert not AuditEntry.objects.exists()


# --- edit ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ExperimentStatus.values)
def test_patch_description_works_in_every_status(admin_client, staff_user, status):
    ExperimentFactory(key="ranking_v2", status=status, description="old")

    response = admin_client.patch(f"{BASE}/ranking_v2", {"description": "new"}, format="json")

    assert response.status_code == 200
    assert response.json()["description"] == "new"
    assert response.json()["status"] == status
    assert Experiment.objects.get(key="ranking_v2").description == "new"
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor) == (AuditAction.UPDATE, staff_user)
    assert (entry.before["description"], entry.after["description"]) == ("old", "new")


def test_patch_key_of_a_draft_renames_it(admin_client):
    ExperimentFactory(key="ranking_v2")

    response = admin_client.patch(f"{BASE}/ranking_v2", {"key": "ranking_v3"}, format="json")

    assert response.status_code == 200
    assert list(Experiment.objects.values_list("key", flat=True)) == ["ranking_v3"]


def test_patch_status_is_400_naming_status(admin_client):
    ExperimentFactory(key="ranking_v2")

    response = admin_client.patch(f"{BASE}/ranking_v2", {"status": "active"}, format="json")

    assert response.status_code == 400
    assert "status" in api_error_fields(response)
    assert Experiment.objects.get(key="ranking_v2").status == ExperimentStatus.DRAFT


def test_patch_with_a_bad_field_is_400_and_changes_nothing(admin_client):
    ExperimentFactory(key="ranking_v2", traffic=0.5)

    response = admin_client.patch(f"{BASE}/ranking_v2", {"traffic": 1.5}, format="json")

    assert response.status_code == 400
    assert "traffic" in api_error_fields(response)
    assert Experiment.objects.get(key="ranking_v2").traffic == 0.5
    assert not AuditEntry.objects.exists()


def test_patch_weights_of_an_active_experiment_is_allowed_but_not_variant_names(admin_client):
    ActiveExperimentFactory(key="ranking_v2")

    weights = admin_client.patch(
        f"{BASE}/ranking_v2", {"variants": variants(0.2, 0.8)}, format="json"
    )
    renamed = admin_client.patch(
        f"{BASE}/ranking_v2",
        {"variants": variants(0.5, 0.5, names=("control", "other"))},
        format="json",
    )

    assert weights.status_code == 200
    assert renamed.status_code == 409
    assert Experiment.objects.get(key="ranking_v2").variant_names == ["control", "treatment"]


def test_put_replaces_the_definition_and_keeps_the_salt(admin_client):
    ExperimentFactory(key="ranking_v2", salt="kept", traffic=0.5, description="old")

    response = admin_client.put(
        f"{BASE}/ranking_v2", {"key": "ranking_v2", "variants": variants(0.3, 0.7)}, format="json"
    )

    assert response.status_code == 200
    data = response.json()
    assert data["salt"] == "kept"
    assert data["traffic"] == 1.0
    assert data["description"] == ""


# --- rotate-salt -----------------------------------------------------------------------------


@pytest.mark.parametrize("data", [None, {}, {"confirm": False}, {"confirm": "yes"}])
def test_rotate_salt_without_confirm_true_is_400_naming_confirm(admin_client, user, data):
    ActiveExperimentFactory(key="ranking_v2", salt="old-salt")
    assign("ranking_v2", user)

    response = admin_client.post(f"{BASE}/ranking_v2/rotate-salt", data, format="json")

    assert response.status_code == 400
    assert "confirm" in api_error_fields(response)
    assert Experiment.objects.get(key="ranking_v2").salt == "old-salt"
    assert Assignment.objects.count() == 1
    assert not AuditEntry.objects.exists()


def test_rotate_salt_deletes_auto_assignments_and_keeps_manual_ones(admin_client, staff_user):
    ActiveExperimentFactory(key="ranking_v2", salt="old-salt")
    auto_users = UserFactory.create_batch(3)
    for auto_user in auto_users:
        assert assign("ranking_v2", auto_user) in {"control", "treatment"}
    forced_user = UserFactory()
    override = admin_client.post(
        "/api/v1/admin/assignments",
        {"experiment_key": "ranking_v2", "user": forced_user.username, "variant": "treatment"},
        format="json",
    )
    assert override.status_code == 201

    response = admin_client.post(f"{BASE}/ranking_v2/rotate-salt", {"confirm": True}, format="json")

    assert response.status_code == 200
    data = response.json()
    assert data["auto_assignments_deleted"] == 3
    assert data["experiment"]["salt"] != "old-salt"
    assert data["experiment"]["key"] == "ranking_v2"
    assert Experiment.objects.get(key="ranking_v2").salt == data["experiment"]["salt"]
    remaining = list(Assignment.objects.values_list("user_id", "variant", "assignment_mode"))
    assert remaining == [(forced_user.pk, "treatment", AssignmentMode.MANUAL)]
    entry = AuditEntry.objects.filter(action=AuditAction.ROTATE_SALT).get()
    assert entry.actor == staff_user
    assert entry.before == {"salt": "old-salt"}
    assert entry.after["auto_assignments_deleted"] == 3


# --- hostile input: bounds, text the database cannot store, renames ---------------------------


def raw_body(**overrides) -> str:
    """A JSON body as text, so that escapes such as \\ud800 reach the parser as sent."""
    return json.dumps(body(**overrides))


def nested_config(levels):
    config = {}
    for _ in range(levels - 1):
        config = {"x": config}
    return config


HOSTILE_BODIES = [
    ({"description": "x" * 1_000_000}, "description"),
    ({"description": "a\x00b"}, "description"),
    ({"description": "\ud800"}, "description"),
    ({"key": "abc\n"}, "key"),
    ({"key": "ab\x00c"}, "key"),
    ({"salt": "s\x00lt"}, "salt"),
    ({"variants": [*variants(0.5), {"name": "tr\ud800", "weight": 0.5}]}, "variants[1].name"),
    (
        {"variants": [{"name": "c", "weight": 0.5, "config": {"foo": "\x00"}}, *variants(0.5)]},
        "variants[0].config.foo",
    ),
    (
        {"variants": [{"name": "c", "weight": 0.5, "config": nested_config(60)}, *variants(0.5)]},
        "variants[0].config" + ".x" * 30,
    ),
    ({"variants": variants(*[1 / 21] * 21, names=[f"v{i}" for i in range(21)])}, "variants"),
    ({"namespace": {"name": "home\x00", "start": 0, "end": 0.5}}, "namespace.name"),
    ({"targeting": {"max_app_version": "\u0661.\u0662"}}, "targeting.max_app_version"),
    ({"targeting": {"platform": "\ud800"}}, "targeting.platform"),
    ({"guardrails": [{"metric": "like_rate\x00", "max_drop": 0.1}]}, "guardrails[0].metric"),
    ({"guardrails": [{"metric": "like_rate", "max_drop": 0.1}] * 21}, "guardrails"),
]


@pytest.mark.parametrize(("overrides", "bad_field"), HOSTILE_BODIES)
def test_hostile_create_is_400_naming_the_path(admin_client, overrides, bad_field):
    response = admin_client.post(BASE, raw_body(**overrides), content_type="application/json")

    assert response.status_code == 400
    assert bad_field in api_error_fields(response)
    assert not Experiment.objects.exists()


@pytest.mark.parametrize(("overrides", "bad_field"), HOSTILE_BODIES)
def test_hostile_patch_is_400_naming_the_path_and_changes_nothing(
    admin_client, overrides, bad_field
):
    experiment = ExperimentFactory(key="ranking_v2", description="before")

    response = admin_client.patch(
        f"{BASE}/ranking_v2", json.dumps(overrides), content_type="application/json"
    )

    assert response.status_code == 400
    assert bad_field in api_error_fields(response)
    experiment.refresh_from_db()
    assert (experiment.key, experiment.description) == ("ranking_v2", "before")


@pytest.mark.parametrize("key", ["a%00b", "ranking_v2%0A", "x" * 5000, "%ED%A0%80"])
def test_a_key_in_the_url_that_no_experiment_can_have_is_a_json_4xx(admin_client, key):
    ExperimentFactory(key="ranking_v2")

    for method, url in [("get", f"{BASE}/{key}"), ("post", f"{BASE}/{key}/activate")]:
        response = getattr(admin_client, method)(url)

        assert response.status_code in (400, 404)
        assert response["Content-Type"].startswith("application/json")


def test_renaming_a_drafts_overridden_variants_is_400_naming_variants(admin_client, user):
    experiment = ExperimentFactory(key="ranking_v2")
    Assignment.objects.create(
        experiment=experiment, user=user, variant="treatment", assignment_mode="manual"
    )

    response = admin_client.put(
        f"{BASE}/ranking_v2",
        body(variants=variants(0.5, 0.5, names=("control", "bold"))),
        format="json",
    )

    assert response.status_code == 400
    assert '"treatment" (1 user)' in api_error_fields(response)["variants"][0]
    experiment.refresh_from_db()
    assert experiment.variant_names == ["control", "treatment"]
