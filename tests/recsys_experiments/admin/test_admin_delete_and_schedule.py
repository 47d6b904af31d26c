"""Deleting in the admin (drafts only, audited, through the service) and the schedule shown
in the list and the editor."""

from datetime import timedelta

import pytest
from django.utils import timezone

from recsys_experiments.models import AuditAction, AuditEntry, Experiment, RetiredExperimentKey
from recsys_experiments.services.assignments import assignment_override
from tests.factories.experiments import ActiveExperimentFactory, ExperimentFactory
from tests.factories.users import UserFactory
from tests.helpers import admin_page_url as url
from tests.recsys_experiments.admin.test_admin_pages import form_data

CHANGELIST = "/admin/recsys_experiments/experiment/"


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_djangos_unaudited_delete_selected_is_replaced_by_delete_drafts(admin):
    ExperimentFactory()

    page = admin.get(CHANGELIST).content.decode()

    assert 'value="delete_selected"' not in page
    assert 'value="delete_selected_drafts"' in page


def test_delete_selected_drafts_confirms_then_deletes_only_the_drafts(admin, staff_user):
    draft = ExperimentFactory(key="a_draft")
    active = ActiveExperimentFactory(key="live_one")
    ended = ExperimentFactory(key="old_one", status="ended")
    form = {"action": "delete_selected_drafts", "_selected_action": [draft.pk, active.pk, ended.pk]}

    confirm = admin.post(CHANGELIST, form)
    done = admin.post(CHANGELIST, {**form, "post": "yes"}, follow=True)

    page = confirm.content.decode()
    assert "not a draft: it will not be deleted" in page and "Yes, delete 1 draft" in page
    assert Experiment.objects.count() == 2  # nothing deleted by the confirmation page
    shown = messages_of(done)
    assert any("Deleted drafts: a_draft" in message for message in shown)
    assert any('"live_one": it is active; only drafts' in message for message in shown)
    assert any('"old_one": it is ended; only drafts' in message for message in shown)
    assert set(Experiment.objects.values_list("key", flat=True)) == {"live_one", "old_one"}
    entry = AuditEntry.objects.get(action=AuditAction.DELETE)
    assert (entry.experiment_key, entry.actor, entry.source) == ("a_draft", staff_user, "admin")


def test_the_delete_page_deletes_a_draft_through_the_service(admin):
    draft = ExperimentFactory(key="a_draft")
    assignment_override(
        experiment=draft, user=UserFactory(), variant="control", actor=None, source="t"
    )

    page = admin.get(url("recsys_experiments_experiment_delete", draft))
    response = admin.post(url("recsys_experiments_experiment_delete", draft), {"post": "yes"})

    assert page.status_code == 200
    assert response.status_code == 302
    assert not Experiment.objects.exists()
    assert AuditEntry.objects.get(action=AuditAction.DELETE).after["key_retired"] is True
    assert RetiredExperimentKey.objects.filter(key="a_draft").exists()


@pytest.mark.parametrize("status", ["active", "ended"])
def test_the_delete_page_of_an_active_or_ended_experiment_refuses_with_the_reason(admin, status):
    experiment = ExperimentFactory(key="kept", status=status)

    for method in ("get", "post"):
        response = getattr(admin, method)(
            url("recsys_experiments_experiment_delete", experiment), {"post": "yes"}, follow=True
        )
        assert any(
            f"it is {status}; only drafts can be deleted" in m for m in messages_of(response)
        )
    change_page = admin.get(url("recsys_experiments_experiment_change", experiment))

    assert Experiment.objects.filter(key="kept").exists()
    assert not AuditEntry.objects.filter(action=AuditAction.DELETE).exists()
    assert "deletelink" not in change_page.content.decode()


def test_the_list_and_editor_say_when_a_schedule_starts_and_ends(admin):
    now = timezone.now()
    ExperimentFactory(key="later", started_at=now + timedelta(days=3, minutes=5))
    live = ActiveExperimentFactory(key="closing", ended_at=now + timedelta(hours=5, minutes=5))

    page = admin.get(CHANGELIST).content.decode()
    editor = admin.get(url("recsys_experiments_experiment_change", live)).content.decode()

    assert "scheduled (starts in 3 days)" in page
    assert "ends in 5 hours" in page and "ends in 5 hours" in editor
    # An active experiment's start is fixed; its end is an input.
    assert 'name="started_at"' not in editor and 'name="ended_at"' in editor


def test_resaving_the_editor_keeps_a_passed_schedule_unchanged(admin):
    draft = ExperimentFactory(key="blend_v3", started_at=timezone.now() + timedelta(days=1))
    page = admin.get(url("recsys_experiments_experiment_change", draft))
    form = page.context["adminform"].form
    shown = form["started_at"].value()
    Experiment.objects.filter(pk=draft.pk).update(started_at=timezone.now() - timedelta(minutes=1))
    draft.refresh_from_db()
    shown = timezone.localtime(draft.started_at).strftime("%Y-%m-%dT%H:%M:%S")

    from tests.recsys_experiments.admin.test_admin_pages import form_data

    response = admin.post(
        url("recsys_experiments_experiment_change", draft),
        form_data(description="edited", started_at=shown),
    )

    assert response.status_code == 302
    stored = Experiment.objects.get()
    assert stored.description == "edited" and stored.started_at == draft.started_at


def test_a_past_scheduled_start_typed_in_the_editor_is_refused_beside_the_field(admin):
    response = admin.post(CHANGELIST + "add/", form_data(started_at="2001-01-01T09:00:00"))

    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["started_at"]
    assert "must not be in the past" in error
