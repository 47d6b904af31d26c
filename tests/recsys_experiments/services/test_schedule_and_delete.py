"""Scheduled starts and ends (`experiments_tick`), and deleting drafts with retired keys.

Times are explicit: the services take `now`, and a time "that has passed" is set on the row
directly, as the clock moving on would leave it (no sleeping)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from recsys_experiments.lib.errors import IllegalTransition, InvalidInput
from recsys_experiments.models import (
    AuditAction,
    AuditEntry,
    Experiment,
    ExperimentPhase,
    RetiredExperimentKey,
)
from recsys_experiments.services.assignments import assignment_override
from recsys_experiments.services.experiments import (
    experiment_activate,
    experiment_create,
    experiment_delete,
    experiment_duplicate,
    experiment_end,
    experiment_update,
    experiments_tick,
)
from tests.factories.experiments import two_variants
from tests.factories.users import UserFactory

HOUR = timedelta(hours=1)


def create(key="swipe_blend_test", **overrides):
    data = {"key": key, "variants": two_variants(), **overrides}
    return experiment_create(data=data, actor=None, source="test")


def active_keys() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("select key from rec_active_experiments()")
        return {row[0] for row in cursor.fetchall()}


def in_an_hour() -> datetime:
    return (timezone.now() + HOUR).replace(microsecond=0)


# --- the schedule's rules -----------------------------------------------------------------


def test_a_draft_takes_a_scheduled_start_and_end_as_iso_text_with_a_timezone(db):
    start = in_an_hour()

    experiment = create(started_at=start.isoformat(), ended_at=(start + 2 * HOUR).isoformat())

    assert experiment.status == "draft"
    assert (experiment.started_at, experiment.ended_at) == (start, start + 2 * HOUR)


@pytest.mark.parametrize(
    ("schedule", "field", "reason"),
    [
        ({"started_at": "2026-02-30T10:00:00+00:00"}, "started_at", "ISO 8601"),
        ({"started_at": "2030-01-01T25:00:00+00:00"}, "started_at", "ISO 8601"),
        ({"started_at": "2030-01-01T10:00:00"}, "started_at", "with a timezone"),
        ({"started_at": "tomorrow"}, "started_at", "ISO 8601"),
        ({"started_at": 1893456000}, "started_at", "ISO 8601"),
        ({"started_at": "2030-01-01\x00"}, "started_at", ""),
        ({"ended_at": "9" * 10_000}, "ended_at", "ISO 8601"),
        ({"started_at": "2001-01-01T00:00:00+00:00"}, "started_at", "must not be in the past"),
        ({"ended_at": "2001-01-01T00:00:00Z"}, "ended_at", "must not be in the past"),
        (
            {"started_at": "2031-01-02T00:00:00Z", "ended_at": "2031-01-01T00:00:00Z"},
            "ended_at",
            "must be after started_at",
        ),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_field(db, schedule, field, reason):
    with pytest.raises(InvalidInput) as raised:
        create(**schedule)

    assert reason in " ".join(raised.value.errors[field])
    assert not Experiment.objects.exists()


def test_a_schedule_is_checked_against_the_given_now(db):
    start = datetime(2030, 6, 1, 9, tzinfo=UTC)

    with pytest.raises(InvalidInput):
        experiment_create(
            data={"key": "later", "variants": two_variants(), "started_at": start.isoformat()},
            actor=None,
            source="test",
            now=start + timedelta(seconds=1),
        )


def test_an_edit_that_does_not_name_the_schedule_keeps_it_even_once_it_has_passed(db):
    experiment = create(started_at=in_an_hour().isoformat())
    Experiment.objects.filter(pk=experiment.pk).update(started_at=timezone.now() - HOUR)
    experiment.refresh_from_db()

    edited = experiment_update(
        experiment=experiment, data={"description": "x"}, partial=True, actor=None, source="t"
    )
    resent = experiment_update(
        experiment=edited,
        data={"description": "y", "started_at": edited.started_at.isoformat()},
        partial=True,
        actor=None,
        source="t",
    )

    assert resent.started_at == experiment.started_at and resent.description == "y"


def test_a_schedule_can_be_cleared_with_null(db):
    experiment = create(started_at=in_an_hour().isoformat())

    edited = experiment_update(
        experiment=experiment, data={"started_at": None}, partial=True, actor=None, source="t"
    )

    assert edited.started_at is None
    entry = AuditEntry.objects.filter(action=AuditAction.UPDATE).get()
    assert entry.before["started_at"] and entry.after["started_at"] is None


def test_an_active_experiments_start_is_fixed_but_its_end_may_be_scheduled(db):
    experiment = experiment_activate(experiment=create(), actor=None, source="t")

    with pytest.raises(IllegalTransition, match="start of an active experiment is fixed"):
        experiment_update(
            experiment=experiment,
            data={"started_at": in_an_hour().isoformat()},
            partial=True,
            actor=None,
            source="t",
        )
    end = in_an_hour()
    edited = experiment_update(
        experiment=experiment,
        data={"ended_at": end.isoformat()},
        partial=True,
        actor=None,
        source="t",
    )

    assert edited.status == "active" and edited.ended_at == end
    assert "swipe_blend_test" in active_keys()  # served until the end
    assert ExperimentPhase.objects.filter(experiment=edited).count() == 1  # no new phase


def test_an_ended_experiments_dates_are_final(db):
    experiment = experiment_end(
        experiment=experiment_activate(experiment=create(), actor=None, source="t"),
        actor=None,
        source="t",
    )

    with pytest.raises(IllegalTransition, match="final"):
        experiment_update(
            experiment=experiment,
            data={"ended_at": in_an_hour().isoformat()},
            partial=True,
            actor=None,
            source="t",
        )


# --- serving and the tick -------------------------------------------------------------------


def test_a_scheduled_draft_is_not_served_before_the_tick_activates_it(db):
    experiment = create(started_at=in_an_hour().isoformat())
    # The clock moves past the scheduled start; nothing has ticked yet.
    Experiment.objects.filter(pk=experiment.pk).update(started_at=timezone.now() - HOUR)

    assert "swipe_blend_test" not in active_keys()

    results = experiments_tick(source="command")

    assert [(r.key, r.action, r.error) for r in results] == [("swipe_blend_test", "activate", None)]
    assert "swipe_blend_test" in active_keys()
    experiment.refresh_from_db()
    assert experiment.status == "active"
    # It started when it was activated (the tick), not at the missed time.
    assert experiment.started_at > timezone.now() - HOUR / 2
    phase = ExperimentPhase.objects.get(experiment=experiment)
    assert phase.started_at == experiment.started_at


def test_the_tick_acts_only_on_what_is_due_at_its_now(db):
    start = in_an_hour()
    create(started_at=start.isoformat())

    assert experiments_tick(now=start - timedelta(seconds=1)) == []
    [result] = experiments_tick(now=start + timedelta(seconds=30))

    experiment = Experiment.objects.get()
    assert (result.action, experiment.status) == ("activate", "active")
    assert experiment.started_at == start + timedelta(seconds=30)
    assert experiments_tick(now=start + timedelta(seconds=60)) == []  # done once


def test_a_scheduled_end_stops_serving_at_its_time_and_the_tick_ends_it_like_a_manual_end(db):
    manual = experiment_activate(experiment=create("manual_one"), actor=None, source="t")
    experiment_end(experiment=manual, actor=None, source="command")
    experiment = experiment_activate(experiment=create(), actor=None, source="t")
    end = in_an_hour()
    experiment_update(
        experiment=experiment,
        data={"ended_at": end.isoformat()},
        partial=True,
        actor=None,
        source="t",
    )
    # The clock moves past the end: no longer served, though the status is still active.
    # (The test runs in one transaction, whose now() is when the phase opened.)
    passed = ExperimentPhase.objects.get(experiment=experiment).started_at
    Experiment.objects.filter(pk=experiment.pk).update(ended_at=passed)
    assert "swipe_blend_test" not in active_keys()

    [result] = experiments_tick(source="command")

    experiment.refresh_from_db()
    assert (result.action, result.error) == ("end", None)
    assert experiment.status == "ended" and experiment.ended_at == passed
    assert ExperimentPhase.objects.get(experiment=experiment).ended_at == passed
    by_tick = AuditEntry.objects.get(experiment=experiment, action=AuditAction.END)
    by_hand = AuditEntry.objects.get(experiment=manual, action=AuditAction.END)
    assert (by_tick.source, by_tick.actor) == (by_hand.source, by_hand.actor) == ("command", None)
    assert by_tick.before["status"] == "active" and by_tick.after["status"] == "ended"
    assert set(by_tick.after) == set(by_hand.after)


def test_a_manual_end_before_the_scheduled_one_ends_now(db):
    experiment = experiment_activate(experiment=create(), actor=None, source="t")
    experiment = experiment_update(
        experiment=experiment,
        data={"ended_at": in_an_hour().isoformat()},
        partial=True,
        actor=None,
        source="t",
    )

    ended = experiment_end(experiment=experiment, actor=None, source="t")

    assert ended.ended_at < timezone.now() + timedelta(seconds=5)


def test_a_draft_whose_end_passed_before_it_started_is_reported_not_activated(db):
    create(
        "missed", started_at=in_an_hour().isoformat(), ended_at=(in_an_hour() + HOUR).isoformat()
    )
    create("fine", started_at=in_an_hour().isoformat())
    Experiment.objects.update(started_at=timezone.now() - 2 * HOUR)
    Experiment.objects.filter(key="missed").update(ended_at=timezone.now() - HOUR)

    results = {r.key: r for r in experiments_tick()}

    assert "scheduled end" in results["missed"].error
    assert results["fine"].error is None
    assert dict(Experiment.objects.values_list("key", "status")) == {
        "missed": "draft",
        "fine": "active",
    }


def test_activating_ahead_of_a_scheduled_start_serves_from_the_start(db):
    start = in_an_hour()
    experiment = create(started_at=start.isoformat())

    experiment = experiment_activate(experiment=experiment, actor=None, source="t")

    assert experiment.status == "active" and experiment.started_at == start
    assert "swipe_blend_test" not in active_keys()


# --- deleting ------------------------------------------------------------------------------


def test_a_draft_is_deleted_with_an_audit_entry_that_outlives_it(db, staff_user):
    experiment = create()

    experiment_delete(experiment=experiment, actor=staff_user, source="api")

    assert not Experiment.objects.exists()
    entry = AuditEntry.objects.get(action=AuditAction.DELETE)
    assert (entry.experiment_id, entry.experiment_key) == (None, "swipe_blend_test")
    assert (entry.actor, entry.source) == (staff_user, "api")
    assert entry.before["variants"] and entry.after["key_retired"] is False
    # The create entry is kept too, detached from the deleted row.
    assert AuditEntry.objects.get(action=AuditAction.CREATE).experiment_id is None
    # Nobody had been assigned: the key is free again.
    assert create().key == "swipe_blend_test"


@pytest.mark.parametrize("status", ["active", "ended"])
def test_only_drafts_can_be_deleted(db, status):
    experiment = experiment_activate(experiment=create(), actor=None, source="t")
    if status == "ended":
        experiment = experiment_end(experiment=experiment, actor=None, source="t")

    with pytest.raises(IllegalTransition, match=f"it is {status}; only drafts"):
        experiment_delete(experiment=experiment, actor=None, source="t")

    assert Experiment.objects.get().status == status
    assert not AuditEntry.objects.filter(action=AuditAction.DELETE).exists()


def test_deleting_a_draft_users_were_assigned_to_retires_its_key_for_good(db):
    experiment = create()
    assignment_override(
        experiment=experiment, user=UserFactory(), variant="control", actor=None, source="t"
    )

    experiment_delete(experiment=experiment, actor=None, source="t")

    retired = RetiredExperimentKey.objects.get()
    assert (retired.key, retired.experiment_id) == ("swipe_blend_test", experiment.pk)
    assert AuditEntry.objects.get(action=AuditAction.DELETE).after["key_retired"] is True
    with pytest.raises(InvalidInput) as raised:
        create()
    assert "never reused" in raised.value.errors["key"][0]
    other = create("other_key")
    with pytest.raises(InvalidInput) as renamed:
        experiment_update(
            experiment=other, data={"key": "swipe_blend_test"}, partial=True, actor=None, source="t"
        )
    assert "key" in renamed.value.errors
    with pytest.raises(InvalidInput):
        experiment_duplicate(experiment=other, new_key="swipe_blend_test", actor=None, source="t")


def test_a_duplicates_default_key_skips_retired_keys(db):
    original = create("blend")
    copy = create("blend_copy")
    assignment_override(
        experiment=copy, user=UserFactory(), variant="control", actor=None, source="t"
    )
    experiment_delete(experiment=copy, actor=None, source="t")

    duplicate = experiment_duplicate(experiment=original, actor=None, source="t")

    assert duplicate.key == "blend_copy2"
