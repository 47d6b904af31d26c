"""Every admin page and action through the test client, including the error paths."""

import json
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.urls import reverse

from recsys_experiments.lib.knobs import KNOBS
from recsys_experiments.models import Assignment, AuditEntry, Experiment
from recsys_experiments.services.assignments import assignment_override
from tests.factories.experiments import ActiveExperimentFactory, ExperimentFactory, two_variants
from tests.factories.users import UserFactory
from tests.helpers import admin_page_url as url

CHANGELIST = "/admin/recsys_experiments/experiment/"


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def variant_rows(rows: list[dict], *, initial: int = 0) -> dict:
    """The POST fields of the variant formset: each row {name, weight, config} (known knobs go
    to their fields, the rest to the raw JSON), or a row with a raw "config_json" text."""
    data = {
        "variants-TOTAL_FORMS": str(len(rows)),
        "variants-INITIAL_FORMS": str(initial),
        "variants-MIN_NUM_FORMS": "2",
        "variants-MAX_NUM_FORMS": "20",
    }
    for index, row in enumerate(rows):
        config = dict(row.get("config") or {})
        knobs = {name: config.pop(name) for name in list(config) if name in KNOBS}
        data[f"variants-{index}-name"] = row.get("name", "")
        data[f"variants-{index}-weight"] = str(row.get("weight", ""))
        data[f"variants-{index}-config_json"] = row.get(
            "config_json", json.dumps(config) if config else ""
        )
        for name, value in knobs.items():
            data[f"variants-{index}-knob_{name}"] = str(value)
    return data


def variant_errors(response) -> list[str]:
    """Every error the variant editor shows: on its rows and above them."""
    form = response.context["adminform"].form
    found = [str(error) for error in form.variant_errors]
    if form.variant_formset is not None:
        found += [str(e) for e in form.variant_formset.non_form_errors()]
        for row in form.variant_formset.forms:
            found += [f"{name}: {error}" for name, errors in row.errors.items() for error in errors]
    return found


def errors_of(response, field) -> list[str]:
    if field == "variants":
        return variant_errors(response)
    return response.context["adminform"].form.errors.get(field)


def form_data(**overrides):
    variants = overrides.pop("variants", two_variants(0.3, 0.7))
    data = {
        "key": "blend_v3",
        "description": "More CF",
        **variant_rows(variants),
        "traffic": "1",
        "namespace_name": "",
        "namespace_start": "",
        "namespace_end": "",
        "platform": "",
        "min_app_version": "",
        "max_app_version": "",
    }
    return {**data, **overrides}


# --- list, create, edit ---------------------------------------------------------------------


def test_changelist_shows_badges_split_traffic_and_enrolled_users(admin):
    experiment = ActiveExperimentFactory(key="swipe_blend_test", traffic=0.5)
    for user in UserFactory.create_batch(3):
        assignment_override(
            experiment=experiment, user=user, variant="control", actor=None, source="t"
        )
    ExperimentFactory(key="a_draft")

    page = admin.get(CHANGELIST).content.decode()
    filtered = admin.get(CHANGELIST + "?status__exact=draft").content.decode()
    searched = admin.get(CHANGELIST + "?q=blend").content.decode()

    assert "recsys-badge" in page and "control 50% · treatment 50%" in page
    assert "50%" in page and ">3<" in page
    assert "a_draft" in filtered and "swipe_blend_test" not in filtered
    assert "swipe_blend_test" in searched and "a_draft" not in searched


def test_create_through_the_form_uses_the_service(admin, staff_user):
    response = admin.post(CHANGELIST + "add/", form_data())

    assert response.status_code == 302
    experiment = Experiment.objects.get(key="blend_v3")
    assert [v["weight"] for v in experiment.variants] == [0.3, 0.7]
    assert experiment.status == "draft" and experiment.salt
    entry = AuditEntry.objects.get(experiment=experiment)
    assert (entry.action, entry.actor, entry.source) == ("create", staff_user, "admin")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"variants": two_variants(0.3, 0)}, "variants"),
        ({"variants": [{"name": "only", "weight": 1}]}, "variants"),
        (
            {
                "variants": [
                    {"name": "a", "weight": 0.5, "config": {"warp": 1}},
                    {"name": "b", "weight": 0.5},
                ]
            },
            "variants",
        ),
        ({"key": "Bad Key"}, "key"),
        ({"traffic": "1.5"}, "traffic"),
        (
            {"namespace_name": "ns", "namespace_start": "0.6", "namespace_end": "0.2"},
            "namespace_name",
        ),
        ({"min_app_version": "2.x"}, "min_app_version"),
    ],
)
def test_bad_input_is_shown_beside_the_field_and_saves_nothing(admin, overrides, field):
    response = admin.post(CHANGELIST + "add/", form_data(**overrides))

    assert response.status_code == 200
    assert errors_of(response, field)
    assert not Experiment.objects.exists()


def test_key_is_read_only_once_active_and_warned_about_while_draft(admin):
    draft, active = ExperimentFactory(), ActiveExperimentFactory()

    draft_page = admin.get(url("recsys_experiments_experiment_change", draft)).content.decode()
    active_page = admin.get(url("recsys_experiments_experiment_change", active)).content.decode()

    assert (
        'name="key"' in draft_page
        and "fixed for good once the experiment is activated" in draft_page
    )
    assert 'name="key"' not in active_page
    assert 'id="recsys-activate"' in draft_page and 'id="recsys-end"' in active_page


def test_editing_variant_names_of_an_active_experiment_is_refused(admin):
    active = ActiveExperimentFactory(key="live")
    renamed = [
        {"name": "a", "weight": 0.5, "config": {}},
        {"name": "b", "weight": 0.5, "config": {}},
    ]

    response = admin.post(
        url("recsys_experiments_experiment_change", active),
        form_data(key="live", variants=renamed),
    )

    # The name fields are disabled: the names posted are ignored and the stored ones kept.
    assert response.status_code == 302
    active.refresh_from_db()
    assert active.variant_names == ["control", "treatment"]


# --- lifecycle buttons and actions ----------------------------------------------------------


def test_activate_button_then_an_illegal_second_activation(admin):
    experiment = ExperimentFactory()

    admin.post(url("experiment_activate", experiment))
    again = admin.post(url("experiment_activate", experiment), follow=True)

    experiment.refresh_from_db()
    assert experiment.status == "active" and experiment.started_at
    assert any("it is active" in message for message in messages_of(again))


def test_end_asks_for_confirmation_then_ends(admin):
    experiment = ActiveExperimentFactory(key="ending_soon")

    confirm = admin.get(url("experiment_end", experiment))
    assert (
        "ending_soon" in confirm.content.decode() and "Ending is final" in confirm.content.decode()
    )
    experiment.refresh_from_db()
    assert experiment.status == "active"

    admin.post(url("experiment_end", experiment))
    experiment.refresh_from_db()
    assert experiment.status == "ended" and experiment.ended_at


def test_list_actions_activate_end_with_confirmation_and_duplicate(admin):
    draft, active = ExperimentFactory(key="first"), ActiveExperimentFactory(key="second")

    admin.post(CHANGELIST, {"action": "activate_selected", "_selected_action": [draft.pk]})
    confirm = admin.post(CHANGELIST, {"action": "end_selected", "_selected_action": [active.pk]})
    assert "Yes, end them" in confirm.content.decode()
    assert Experiment.objects.get(pk=active.pk).status == "active"
    admin.post(
        CHANGELIST, {"action": "end_selected", "_selected_action": [active.pk], "post": "yes"}
    )
    admin.post(CHANGELIST, {"action": "duplicate_selected", "_selected_action": [active.pk]})

    assert Experiment.objects.get(pk=draft.pk).status == "active"
    assert Experiment.objects.get(pk=active.pk).status == "ended"
    assert Experiment.objects.get(key="second_copy").status == "draft"


def test_rotate_salt_warns_with_the_count_then_keeps_manual(admin):
    experiment = ActiveExperimentFactory()
    forced = UserFactory()
    with connection.cursor() as cursor:
        for user in UserFactory.create_batch(3):
            cursor.execute("select rec_assign_variant(%s, %s)", [experiment.key, user.pk])
    assignment_override(
        experiment=experiment, user=forced, variant="treatment", actor=None, source="t"
    )
    old_salt = experiment.salt

    warning = admin.get(url("experiment_rotate_salt", experiment)).content.decode()
    assert "re-randomises every automatic assignment" in warning
    assert "<strong>3</strong> automatic assignments" in warning

    admin.post(url("experiment_rotate_salt", experiment), {"confirm": "yes"})
    experiment.refresh_from_db()
    assert experiment.salt != old_salt
    assert list(experiment.assignments.values_list("user", flat=True)) == [forced.pk]


# --- assignments and the custom pages -------------------------------------------------------


def test_assignments_page_finds_forces_and_resets(admin, staff_user):
    experiment = ActiveExperimentFactory(key="live_test")
    user = UserFactory(username="viewer", email="viewer@example.com")
    page = reverse("admin:recsys_assignments")

    found = admin.get(page, {"q": "VIEWER@example.com"}).content.decode()
    assert "live_test" in found and "not yet assigned" in found

    admin.post(
        page,
        {
            "user_id": user.pk,
            "experiment_key": "live_test",
            "variant": "treatment",
            "action": "force",
        },
    )
    stored = Assignment.objects.get(experiment=experiment, user=user)
    assert (stored.variant, stored.assignment_mode) == ("treatment", "manual")

    reset = admin.post(
        page, {"user_id": user.pk, "experiment_key": "live_test", "action": "reset"}, follow=True
    )
    assert not Assignment.objects.filter(user=user).exists()
    assert any("back to automatic" in message for message in messages_of(reset))
    assert AuditEntry.objects.filter(subject_user=user, source="admin").count() == 2


def test_assignments_page_errors(admin):
    ActiveExperimentFactory(key="live_test")
    user = UserFactory()
    page = reverse("admin:recsys_assignments")

    unknown_user = admin.get(page, {"q": "nobody-here"})
    bad_variant = admin.post(
        page,
        {"user_id": user.pk, "experiment_key": "live_test", "variant": "nope", "action": "force"},
        follow=True,
    )

    assert "no user with id, username or email" in unknown_user.content.decode()
    assert any('has no variant "nope"' in message for message in messages_of(bad_variant))
    assert not Assignment.objects.exists()


def test_the_recsys_section_lists_the_custom_pages(admin):
    index = admin.get("/admin/").content.decode()

    assert reverse("admin:recsys_assignments") in index
    assert reverse("admin:recsys_diagnostics") in index


# --- permissions ----------------------------------------------------------------------------


def staff_with(*codenames):
    member = UserFactory(is_staff=True)
    member.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return member


@pytest.mark.parametrize(
    "path",
    [CHANGELIST, "/admin/recsys/assignments/", "/admin/recsys/diagnostics/"],
)
def test_non_staff_are_sent_to_the_login_page(client, user, path):
    client.force_login(user)

    response = client.get(path)

    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_staff_without_permissions_cannot_change_experiments_or_assignments(client, db):
    experiment = ExperimentFactory()
    target = UserFactory()
    client.force_login(staff_with("view_experiment", "view_assignment"))

    assert client.get(CHANGELIST).status_code == 200
    assert client.post(url("experiment_activate", experiment)).status_code == 403
    assert client.get(url("experiment_rotate_salt", experiment)).status_code == 403
    view_only = client.get("/admin/recsys/assignments/", {"q": target.username}).content.decode()
    forced = client.post(
        "/admin/recsys/assignments/",
        {
            "user_id": target.pk,
            "experiment_key": experiment.key,
            "variant": "control",
            "action": "force",
        },
    )

    assert "Force" not in view_only
    assert forced.status_code == 403
    experiment.refresh_from_db()
    assert experiment.status == "draft" and not Assignment.objects.exists()


def test_staff_with_no_recsys_permission_gets_403(client, db):
    client.force_login(staff_with())

    assert client.get(CHANGELIST).status_code == 403
    assert client.get("/admin/recsys/assignments/").status_code == 403


# --- hostile input: ids, query strings, forms, actions --------------------------------------

BAD_IDS = ["notanint", "999999", "random-uuid", "ab%00cd", "%00"]
# (page, method): every page named by an experiment's id in the URL.
EXPERIMENT_PAGES = [
    ("change", "get"),
    ("change", "post"),
    ("results", "get"),
    ("end", "get"),
    ("end", "post"),
    ("rotate-salt", "get"),
    ("rotate-salt", "post"),
    ("activate", "post"),
    ("duplicate", "post"),
    ("history", "get"),
    ("delete", "get"),
]


@pytest.mark.parametrize("bad_id", BAD_IDS)
@pytest.mark.parametrize(("page", "method"), EXPERIMENT_PAGES)
def test_an_id_naming_no_experiment_redirects_with_a_message(admin, bad_id, page, method):
    ExperimentFactory(key="untouched")
    object_id = str(uuid.uuid4()) if bad_id == "random-uuid" else bad_id

    response = getattr(admin, method)(f"{CHANGELIST}{object_id}/{page}/", follow=True)

    assert response.status_code == 200
    assert response.redirect_chain and response.redirect_chain[0][1] == 302
    assert any("exist" in message for message in messages_of(response))
    assert Experiment.objects.get().status == "draft" and Experiment.objects.count() == 1


def test_the_missing_id_is_shown_escaped_in_the_message(admin):
    response = admin.get(f"{CHANGELIST}ab%00cd/results/", follow=True)

    assert "ID “ab\\x00cd”" in messages_of(response)[0]
    assert "\x00" not in response.content.decode()


@pytest.mark.parametrize(
    ("page", "name"),
    [(None, "recsys_experiments_experiment_change"), ("end", "experiment_end"),
     ("rotate-salt", "experiment_rotate_salt"), ("results", "experiment_results")],
)  # fmt: skip
def test_by_key_pages_redirect_to_the_page_of_the_experiment(admin, page, name):
    experiment = ActiveExperimentFactory(key="live")

    response = admin.get(CHANGELIST + "by-key/live/" + (f"{page}/" if page else ""))

    assert response.status_code == 302 and response["Location"] == url(name, experiment)


def test_a_by_key_bookmark_keeps_its_query(admin):
    experiment = ActiveExperimentFactory(key="live")

    response = admin.get(CHANGELIST + "by-key/live/results/?view=genre&phase=1")

    assert response["Location"] == url("experiment_results", experiment) + "?view=genre&phase=1"


@pytest.mark.parametrize("page", ["activate", "duplicate", "history", "nope"])
def test_by_key_has_only_the_bookmarkable_pages(admin, page):
    ActiveExperimentFactory(key="live")

    assert admin.get(f"{CHANGELIST}by-key/live/{page}/").status_code == 404


@pytest.mark.parametrize("path", ["by-key/a%00b/", "by-key/live%0A/results/", "by-key/nope/"])
def test_by_key_pages_for_a_key_no_experiment_can_have_are_404(admin, path):
    ActiveExperimentFactory(key="live")

    assert admin.get(CHANGELIST + path).status_code == 404


CHANGELISTS = [
    CHANGELIST,
    "/admin/recsys_experiments/auditentry/",
    "/admin/accounts/user/",
    "/admin/auth/group/",
    "/admin/telemetry/alertthreshold/",
    "/admin/telemetry/metric/",
    "/admin/telemetry/experimentmetric/",
    "/admin/deck/mediaitem/",
]
JUNK_QUERIES = [
    "q=%00",
    "q=a%00b",
    "q=%ED%A0%80",
    "status=%00",
    "status__exact=%00",
    "status__exact=bogus",
    "action__exact=%00",
    "source=%00",
    "is_staff__exact=%00",
    "groups__id__exact=%00",
    "key=%00",
    "o=bogus",
    "o=%00",
    "o=99",
    "p=%00",
    "p=99999",
    "all=%00",
    "%00=1",
    "updated_at__gte=%00",
]


@pytest.mark.parametrize("query", JUNK_QUERIES)
@pytest.mark.parametrize("changelist", CHANGELISTS)
def test_changelists_answer_junk_query_strings_without_a_server_error(admin, changelist, query):
    AuditEntry.objects.create(experiment_key="k", action="create", source="t")
    ExperimentFactory()

    response = admin.get(f"{changelist}?{query}")

    # The page, Django's "?e=1" redirect for bad filters, or 400 for a disallowed lookup.
    assert response.status_code in (200, 302, 400)
    if response.status_code == 302:
        assert response["Location"].endswith("?e=1")
        assert admin.get(response["Location"]).status_code == 200


@pytest.mark.parametrize(
    "query", ["status=%00", "status__exact=a%00b", "q=%00", "o=1&status=draft%00"]
)
def test_a_nul_in_a_changelist_filter_is_a_bad_filter(admin, query):
    response = admin.get(f"{CHANGELIST}?{query}")

    assert response.status_code == 302 and response["Location"].endswith("?e=1")


def test_a_filter_for_a_text_field_still_works(admin):
    ExperimentFactory(key="a_draft")
    ActiveExperimentFactory(key="a_live")

    page = admin.get(CHANGELIST + "?status=active").content.decode()

    assert "a_live" in page and "a_draft" not in page


def test_autocomplete_with_a_nul_in_the_term_finds_nobody(admin):
    UserFactory(username="someone")
    query = "app_label=recsys_experiments&model_name=experiment&field_name=created_by"

    found = admin.get(f"/admin/autocomplete/?term=some&{query}")
    nul = admin.get(f"/admin/autocomplete/?term=%00&{query}")

    assert [row["text"] for row in found.json()["results"]] == ["someone"]
    assert nul.status_code == 200 and nul.json()["results"] == []


@pytest.mark.parametrize("q", ["%00", "a%00b", "%ED%A0%80", "x" * 5000])
def test_the_assignments_lookup_answers_junk_with_a_message(admin, q):
    response = admin.get(f"/admin/recsys/assignments/?q={q}")

    assert response.status_code == 200
    assert response.context["error"] and response.context["state"] is None


@pytest.mark.parametrize(
    "overrides",
    [{"user_id": "a\x00"}, {"experiment_key": "live\x00"}, {"variant": "control\x00"}],
)
def test_forcing_a_variant_with_junk_fields_is_refused_with_a_message(admin, overrides):
    ActiveExperimentFactory(key="live")
    user = UserFactory()
    form = {"user_id": user.pk, "experiment_key": "live", "variant": "control", "action": "force"}

    response = admin.post("/admin/recsys/assignments/", {**form, **overrides}, follow=True)

    assert response.status_code == 200
    assert messages_of(response) and not Assignment.objects.exists()


def nested_variants(levels):
    config = {}
    for _ in range(levels - 1):
        config = {"x": config}
    return [{"name": "a", "weight": 0.5, "config": config}, {"name": "b", "weight": 0.5}]


def raw_config(text):
    return [{"name": "a", "weight": 0.5, "config_json": text}, {"name": "b", "weight": 0.5}]


def deep_json_text(levels):
    return "[" * levels + "]" * levels


HOSTILE_FORMS = [
    ({"key": "blend\x00v3"}, "key"),
    ({"description": "more\x00cf"}, "description"),
    ({"description": "x" * 1_000_000}, "description"),
    ({"variants": raw_config(deep_json_text(100_000))}, "variants"),
    ({"variants": nested_variants(100)}, "variants"),
    ({"variants": raw_config('{"\\ud800": 1}')}, "variants"),
    ({"variants": raw_config('{"\\u0000": 1}')}, "variants"),
    ({"variants": [{"name": "a\x00b", "weight": 1}, {"name": "b", "weight": 1}]}, "variants"),
    ({"variants": [{"name": "a", "weight": "1e400"}, {"name": "b", "weight": 1}]}, "variants"),
    ({"variants": [{"name": "a", "weight": "NaN"}, {"name": "b", "weight": 1}]}, "variants"),
    ({"started_at": "2026-02-30T10:00:00"}, "started_at"),
    ({"ended_at": "\x00"}, "ended_at"),
    ({"guardrails": '[{"metric": "\\ud800", "max_drop": 0.1}]'}, "guardrails"),
    ({"guardrails": deep_json_text(5000)}, "guardrails"),
    ({"namespace_name": "ns\x00", "namespace_start": "0", "namespace_end": "1"}, "namespace_name"),
    ({"min_app_version": "\u0661.\u0662"}, "min_app_version"),
    ({"traffic": "1e400"}, "traffic"),
]


@pytest.mark.parametrize(("overrides", "field"), HOSTILE_FORMS)
def test_hostile_add_forms_show_the_error_beside_the_field(admin, overrides, field):
    response = admin.post(CHANGELIST + "add/", form_data(**overrides))

    assert response.status_code == 200
    assert errors_of(response, field)
    assert not Experiment.objects.exists()


@pytest.mark.parametrize(("overrides", "field"), HOSTILE_FORMS)
def test_hostile_change_forms_show_the_error_and_change_nothing(admin, overrides, field):
    experiment = ExperimentFactory(key="blend_v3", description="before")

    response = admin.post(
        url("recsys_experiments_experiment_change", experiment), form_data(**overrides)
    )

    assert response.status_code == 200
    assert errors_of(response, field)
    experiment.refresh_from_db()
    assert experiment.description == "before"


def test_a_too_long_description_says_the_limit(admin):
    response = admin.post(CHANGELIST + "add/", form_data(description="x" * 5000))

    [error] = response.context["adminform"].form.errors["description"]
    assert "at most 2000 characters" in error


def test_renaming_a_drafts_overridden_variant_in_the_form_is_refused(admin):
    draft = ExperimentFactory(key="blend_v3")
    assignment_override(
        experiment=draft, user=UserFactory(), variant="treatment", actor=None, source="t"
    )
    renamed = [{"name": "control", "weight": 0.5}, {"name": "bold", "weight": 0.5}]

    response = admin.post(
        url("recsys_experiments_experiment_change", draft), form_data(variants=renamed)
    )

    assert response.status_code == 200
    [error] = variant_errors(response)
    assert '"treatment" (1 user)' in error
    draft.refresh_from_db()
    assert draft.variant_names == ["control", "treatment"]


def test_a_domain_error_at_save_time_is_a_message_not_a_server_error(admin, monkeypatch):
    """A write that came in between the form's checks and the save (another admin took the
    key, forced a user into a variant being dropped) surfaces as a message."""
    from recsys_experiments.admin import experiment_admin as experiments_admin
    from recsys_experiments.lib.errors import InvalidInput

    def taken(**kwargs):
        raise InvalidInput({"key": ['"blend_v3" is already taken']})

    monkeypatch.setattr(experiments_admin, "experiment_create", taken)

    response = admin.post(CHANGELIST + "add/", form_data(), follow=True)

    assert response.status_code == 200
    assert any(
        "Not saved" in message and "already taken" in message for message in messages_of(response)
    )
    assert not Experiment.objects.exists()


def test_duplicate_selected_reports_each_failure_and_keeps_the_copies_that_worked(admin):
    full = ExperimentFactory(key="popular")
    Experiment.objects.bulk_create(
        ExperimentFactory.build(key=f"popular_copy{'' if n == 1 else n}") for n in range(1, 1000)
    )
    fine = ExperimentFactory(key="quiet")

    response = admin.post(
        CHANGELIST,
        {"action": "duplicate_selected", "_selected_action": [full.pk, fine.pk]},
        follow=True,
    )

    assert response.status_code == 200
    shown = messages_of(response)
    assert any(
        "popular not duplicated" in message and "no free copy key" in message for message in shown
    )
    assert any("Created drafts: quiet_copy" in message for message in shown)
    assert Experiment.objects.filter(key="quiet_copy").exists()


@pytest.mark.parametrize("selected", ["\x00", "notauuid", "999999"])
@pytest.mark.parametrize(
    "action", ["activate_selected", "duplicate_selected", "delete_selected_drafts"]
)
def test_an_action_on_a_selection_naming_no_valid_id_changes_nothing(admin, action, selected):
    experiment = ExperimentFactory(key="untouched")

    response = admin.post(
        CHANGELIST,
        {"action": action, "_selected_action": [selected, experiment.pk], "post": "yes"},
        follow=True,
    )

    assert response.status_code == 200
    assert any("Nothing changed" in message for message in messages_of(response))
    assert list(Experiment.objects.values_list("key", "status")) == [("untouched", "draft")]


@pytest.mark.parametrize("alert", ["\x00", "no_impressions\x00"])
def test_list_editable_with_a_nul_in_a_posted_id_changes_nothing(admin, alert):
    from telemetry.models import AlertThreshold

    before = dict(AlertThreshold.objects.values_list("alert", "threshold"))
    form = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-alert": alert,
        "form-0-threshold": "0.5",
        "_save": "Save",
    }

    response = admin.post("/admin/telemetry/alertthreshold/", form, follow=True)

    assert response.status_code == 200
    assert any("Nothing changed" in message for message in messages_of(response))
    assert dict(AlertThreshold.objects.values_list("alert", "threshold")) == before
