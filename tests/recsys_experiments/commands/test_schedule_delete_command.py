"""`manage.py experiments` create with normalised weights, schedule, tick and delete."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from recsys_experiments.models import AuditAction, AuditEntry, Experiment, RetiredExperimentKey
from recsys_experiments.services.assignments import assignment_override
from tests.factories.experiments import ActiveExperimentFactory, ExperimentFactory
from tests.factories.users import UserFactory
from tests.helpers import command_fails, command_output


def run(*args) -> str:
    return command_output("experiments", *args)


def fails(*args) -> str:
    return command_fails("experiments", *args)


@pytest.mark.parametrize(
    ("weights", "stored"),
    [(("70", "30"), [0.7, 0.3]), (("1", "1", "2"), [0.25, 0.25, 0.5])],
)
def test_create_normalises_any_positive_weights_and_prints_the_stored_ones(db, weights, stored):
    args = []
    for name, weight in zip(("a", "b", "c"), weights, strict=False):
        args += ["--variant", f"{name}={weight}"]

    data = json.loads(run("create", "--key", "ranking_v2", *args, "--json"))

    assert [v["weight"] for v in data["variants"]] == stored
    assert f"a: weight {stored[0]:.4g}," in run("show", "ranking_v2")


@pytest.mark.parametrize("weight", ["0", "-1", "nan", "inf", "x"])
def test_create_refuses_weights_that_are_not_positive_numbers(db, weight):
    message = fails("create", "--key", "ranking_v2", "--variant", f"a={weight}", "--variant", "b=1")

    assert "weight" in message or "--variant" in message
    assert not Experiment.objects.exists()


def future(hours=1) -> str:
    return (timezone.now() + timedelta(hours=hours)).replace(microsecond=0).isoformat()


def test_create_and_schedule_set_the_times_and_say_when(db):
    run(
        "create",
        "--key",
        "ranking_v2",
        "--variant",
        "a=1",
        "--variant",
        "b=1",
        "--start",
        future(49),
    )

    out = run("schedule", "ranking_v2", "--end", future(73))

    assert "scheduled (starts in 2 days)" in out and "ends in 3 days" in out
    assert "[scheduled (starts in 2 days); ends in 3 days]" in run("list")
    cleared = run("schedule", "ranking_v2", "--start", "none", "--end", "none")
    assert cleared.strip() == "ranking_v2: no schedule"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--start", "2026-02-30T09:00:00Z"], "started_at: must be an ISO 8601"),
        (["--start", "2001-01-01T09:00:00Z"], "started_at: a scheduled start must not be"),
        (["--end", "soon"], "ended_at: must be an ISO 8601"),
        ([], "give --start and/or --end"),
    ],
)
def test_schedule_refuses_bad_times_naming_the_field(db, args, expected):
    ExperimentFactory(key="ranking_v2")

    assert expected in fails("schedule", "ranking_v2", *args)


def test_tick_activates_and_ends_what_is_due_at_now(db):
    start = datetime(2031, 3, 1, 9, tzinfo=UTC)
    run(
        "create",
        "--key",
        "later",
        "--variant",
        "a=1",
        "--variant",
        "b=1",
        "--start",
        start.isoformat(),
    )
    ActiveExperimentFactory(key="closing", ended_at=start - timedelta(minutes=1))

    early = run("tick", "--now", (start - timedelta(hours=2)).isoformat())
    out = run("tick", "--now", (start + timedelta(seconds=30)).isoformat())

    assert early.strip() == "nothing due"
    assert out.splitlines() == ["closing: ended (scheduled)", "later: activated (scheduled)"]
    assert dict(Experiment.objects.values_list("key", "status")) == {
        "later": "active",
        "closing": "ended",
    }
    entries = AuditEntry.objects.filter(action__in=[AuditAction.ACTIVATE, AuditAction.END])
    assert sorted(entries.values_list("experiment_key", "action", "source")) == [
        ("closing", "end", "command"),
        ("later", "activate", "command"),
    ]


def test_tick_reports_a_failure_with_a_non_zero_exit(db):
    ExperimentFactory(
        key="missed",
        started_at=timezone.now() - timedelta(hours=2),
        ended_at=timezone.now() - timedelta(hours=1),
    )

    assert "1 scheduled change failed: missed" in fails("tick")


@pytest.mark.parametrize("now", ["yesterday", "2031-01-01T09:00:00", "2031-02-30T00:00:00Z"])
def test_tick_refuses_a_bad_now(db, now):
    assert "--now" in fails("tick", "--now", now)


def test_delete_needs_yes_and_deletes_a_draft_with_an_audit_entry(db):
    ExperimentFactory(key="ranking_v2")

    assert "re-run with --yes" in fails("delete", "ranking_v2")
    out = run("delete", "ranking_v2", "--yes")

    assert out.strip() == "deleted draft ranking_v2"
    assert not Experiment.objects.exists()
    entry = AuditEntry.objects.get(action=AuditAction.DELETE)
    assert (entry.experiment_key, entry.source) == ("ranking_v2", "command")


@pytest.mark.parametrize("status", ["active", "ended"])
def test_delete_refuses_active_and_ended_experiments(db, status):
    ExperimentFactory(key="ranking_v2", status=status)

    message = fails("delete", "ranking_v2", "--yes")

    assert f"it is {status}; only drafts can be deleted" in message
    assert Experiment.objects.exists()


def test_delete_of_a_draft_with_overrides_retires_the_key(db):
    draft = ExperimentFactory(key="ranking_v2")
    assignment_override(
        experiment=draft, user=UserFactory(), variant="control", actor=None, source="t"
    )

    assert "key would be retired" in fails("delete", "ranking_v2")
    assert "key retired" in run("delete", "ranking_v2", "--yes")
    assert RetiredExperimentKey.objects.filter(key="ranking_v2").exists()
    message = fails("create", "--key", "ranking_v2", "--variant", "a=1", "--variant", "b=1")
    assert message.startswith("key:") and "never reused" in message
