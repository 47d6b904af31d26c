"""`manage.py assignments ...`: show, set (manual override), reset (back to auto)."""

import json
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
from tests.helpers import assign, command_fails, command_output, other_variant, stored


@pytest.fixture
def subject(db):
    return UserFactory(username="alice", email="Alice@Example.com")


@pytest.fixture
def experiment(db):
    return ActiveExperimentFactory(key="ranking_v2")


# --- show ------------------------------------------------------------------------------------


def test_show_a_user_without_anything(subject):
    lines = run("show", "alice").splitlines()

    assert lines == [
        f"user alice <Alice@Example.com> {subject.pk}",
        "no active experiments and no assignments",
    ]


def test_show_lists_active_experiments_and_inactive_assignments(subject, experiment):
    variant = assign("ranking_v2", subject)
    ActiveExperimentFactory(key="unassigned_one")
    draft = ExperimentFactory(key="old_one")
    run("set", "old_one", "alice", "control")
    draft.status = ExperimentStatus.ENDED
    draft.save()

    lines = run("show", "alice").splitlines()

    assert lines[0] == f"user alice <Alice@Example.com> {subject.pk}"
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["ranking_v2"][:2] == [variant, "auto"]
    assert rows["unassigned_one"][:2] == ["-", "unassigned"]
    assert rows["old_one"][:2] == ["control", "manual"]
    assert "(experiment not active)" in lines[-1]


@pytest.mark.parametrize("identifier", ["uuid", "alice", "ALICE@example.com"])
def test_show_json_finds_the_user_by_uuid_username_or_email(subject, experiment, identifier):
    variant = assign("ranking_v2", subject)
    if identifier == "uuid":
        identifier = str(subject.pk)

    data = json.loads(run("show", identifier, "--json"))

    assert set(data) == {"user", "assignments", "active_experiments"}
    assert data["user"] == {
        "id": str(subject.pk),
        "username": "alice",
        "email": "Alice@Example.com",
    }
    assert [(a["experiment_key"], a["variant"]) for a in data["assignments"]] == [
        ("ranking_v2", variant)
    ]
    assert data["active_experiments"][0]["hashed_variant"] == variant


@pytest.mark.parametrize("identifier", ["nobody", str(uuid.uuid4())])
def test_show_an_unknown_user_is_a_command_error(db, identifier):
    assert identifier in fails("show", identifier)


@pytest.mark.parametrize("action", [("show",), ("set", "ranking_v2"), ("reset", "ranking_v2")])
def test_a_blank_user_is_a_command_error_not_a_user_without_email(experiment, action):
    UserFactory(username="no_email", email="")
    extra = {"show": [], "set": ["control"], "reset": ["--yes"]}[action[0]]

    assert fails(*action, "  ", *extra) == "user: required: a uuid, username or email"
    assert not Assignment.objects.exists()


# --- set -------------------------------------------------------------------------------------


def test_set_forces_the_variant_that_assignment_then_returns(subject, experiment):
    hashed = assign("ranking_v2", subject)
    forced = other_variant(hashed)

    output = run("set", "ranking_v2", "alice", forced)

    assert output.strip() == f"alice is now {forced} in ranking_v2 (manual)"
    assert stored(experiment, subject) == (forced, AssignmentMode.MANUAL)
    assert assign("ranking_v2", subject) == forced
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.subject_user, entry.source) == (
        AuditAction.OVERRIDE,
        None,
        subject,
        "command",
    )


def test_set_json_prints_the_assignment(subject, experiment):
    data = json.loads(run("set", "ranking_v2", "alice@example.com", "treatment", "--json"))

    assert data == {
        "experiment_key": "ranking_v2",
        "user": str(subject.pk),
        "variant": "treatment",
        "assignment_mode": "manual",
    }


def test_set_an_unknown_variant_is_a_command_error(subject, experiment):
    message = fails("set", "ranking_v2", "alice", "purple")

    assert message == 'variant: experiment "ranking_v2" has no variant "purple"'
    assert stored(experiment, subject) is None
    assert not AuditEntry.objects.exists()


def test_set_in_an_ended_experiment_is_a_command_error(subject):
    ended = ExperimentFactory(key="ended_one", status=ExperimentStatus.ENDED)

    assert "has ended" in fails("set", "ended_one", "alice", "control")
    assert stored(ended, subject) is None


def test_set_in_an_unknown_experiment_or_for_an_unknown_user_is_a_command_error(
    subject, experiment
):
    assert fails("set", "nope", "alice", "control") == 'no experiment with key "nope"'
    assert "nobody" in fails("set", "ranking_v2", "nobody", "control")
    assert not Assignment.objects.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("set", "ranking_v2", "alice", "pur\nple"), 'has no variant "pur\\nple"'),
        (("set", "ranking_v2", "alice", "con\x00trol"), "variant: contains a NUL"),
        (("set", "ranking_v2", "al\x00ice", "control"), "user: contains a NUL"),
        (("set", "ranking\x00v2", "alice", "control"), "no experiment with key"),
        (("show", "\x00"), "user: contains a NUL"),
        (("reset", "ranking_v2\n", "alice", "--yes"), "no experiment with key"),
    ],
)
def test_junk_arguments_are_one_line_command_errors(subject, experiment, args, expected):
    assert expected in fails(*args)
    assert not Assignment.objects.exists()


# --- reset -----------------------------------------------------------------------------------


def test_reset_without_yes_refuses_and_keeps_the_assignment(subject, experiment):
    run("set", "ranking_v2", "alice", "treatment")

    message = fails("reset", "ranking_v2", "alice")

    assert "--yes" in message
    assert stored(experiment, subject) == ("treatment", AssignmentMode.MANUAL)
    assert not AuditEntry.objects.filter(action=AuditAction.RESET).exists()


def test_reset_with_yes_deletes_it_and_the_next_assignment_is_auto(subject, experiment):
    hashed = assign("ranking_v2", subject)
    run("set", "ranking_v2", "alice", other_variant(hashed))

    output = run("reset", "ranking_v2", "alice", "--yes")

    assert output.strip() == "alice in ranking_v2: back to automatic assignment"
    assert stored(experiment, subject) is None
    assert assign("ranking_v2", subject) == hashed
    assert stored(experiment, subject) == (hashed, AssignmentMode.AUTO)
    entry = AuditEntry.objects.get(action=AuditAction.RESET)
    assert (entry.actor, entry.subject_user, entry.source) == (None, subject, "command")


def test_reset_with_nothing_stored_says_so(subject, experiment):
    output = run("reset", "ranking_v2", "alice", "--yes")

    assert output.strip() == "alice had no assignment in ranking_v2; nothing to reset"
    assert not AuditEntry.objects.exists()


def test_reset_json_reports_whether_a_row_was_deleted(subject, experiment):
    assign("ranking_v2", subject)

    first = json.loads(run("reset", "ranking_v2", "alice", "--yes", "--json"))
    second = json.loads(run("reset", "ranking_v2", "alice", "--yes", "--json"))

    assert first == {"experiment_key": "ranking_v2", "user": str(subject.pk), "deleted": True}
    assert second["deleted"] is False


def test_reset_in_an_unknown_experiment_is_a_command_error(subject):
    assert fails("reset", "nope", "alice", "--yes") == 'no experiment with key "nope"'


def run(*args) -> str:
    return command_output("assignments", *args)


def fails(*args) -> str:
    return command_fails("assignments", *args)
