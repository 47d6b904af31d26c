"""Phases: activation opens phase 1, a change to weights, traffic, namespace or targeting of an
active experiment (or a salt rotation) closes it and opens the next, ending closes the last;
first assignments record the phase they were made in."""

import pytest
from django.db import connection

from recsys_experiments.models import Assignment, AuditEntry, ExperimentPhase
from recsys_experiments.services.assignments import assignment_assign, assignment_override
from recsys_experiments.services.experiments import (
    experiment_activate,
    experiment_create,
    experiment_end,
    experiment_rotate_salt,
    experiment_update,
)
from tests.factories.experiments import two_variants
from tests.factories.users import UserFactory


def create(**overrides):
    data = {"key": "phased", "variants": two_variants(0.5, 0.5), **overrides}
    return experiment_create(data=data, actor=None, source="test")


def phases(experiment):
    return list(
        ExperimentPhase.objects.filter(experiment=experiment)
        .order_by("number")
        .values("number", "started_at", "ended_at", "weights", "traffic", "salt")
    )


def test_activation_opens_phase_1_and_ending_closes_it(db):
    experiment = create()
    assert phases(experiment) == []

    experiment = experiment_activate(experiment=experiment, actor=None, source="test")
    [phase] = phases(experiment)
    assert phase["number"] == 1 and phase["started_at"] == experiment.started_at
    assert phase["ended_at"] is None
    assert phase["weights"] == [
        {"name": "control", "weight": 0.5},
        {"name": "treatment", "weight": 0.5},
    ]
    assert phase["salt"] == experiment.salt and phase["traffic"] == 1.0

    experiment = experiment_end(experiment=experiment, actor=None, source="test")
    [phase] = phases(experiment)
    assert phase["ended_at"] == experiment.ended_at


@pytest.mark.parametrize(
    "change",
    [
        {"variants": two_variants(0.8, 0.2)},
        {"traffic": 0.5},
        {"namespace": {"name": "deck", "start": 0.0, "end": 0.5}},
        {"targeting": {"platform": "ios"}},
    ],
    ids=["weights", "traffic", "namespace", "targeting"],
)
def test_each_change_of_an_active_experiment_starts_a_phase(db, change):
    experiment = experiment_activate(experiment=create(), actor=None, source="test")

    experiment_update(experiment=experiment, data=change, partial=True, actor=None, source="t")

    first, second = phases(experiment)
    assert first["ended_at"] is not None and first["ended_at"] == second["started_at"]
    assert second["number"] == 2 and second["ended_at"] is None
    assert AuditEntry.objects.filter(experiment=experiment, action="update").count() == 1


def test_a_weight_change_records_the_new_weights(db):
    experiment = experiment_activate(experiment=create(), actor=None, source="test")
    experiment_update(
        experiment=experiment,
        data={"variants": two_variants(0.8, 0.2)},
        partial=True,
        actor=None,
        source="test",
    )
    assert [p["weights"][0]["weight"] for p in phases(experiment)] == [0.5, 0.8]


@pytest.mark.parametrize(
    "change",
    [
        {"description": "new words"},
        {"guardrails": [{"metric": "like_rate", "max_drop": 0.05}]},
        {"variants": [{**v, "config": {"cf_weight": 0.7}} for v in two_variants(0.5, 0.5)]},
    ],
    ids=["description", "guardrails", "config only"],
)
def test_other_changes_keep_the_phase(db, change):
    experiment = experiment_activate(experiment=create(), actor=None, source="test")
    experiment_update(experiment=experiment, data=change, partial=True, actor=None, source="t")
    assert [p["number"] for p in phases(experiment)] == [1]


def test_drafts_have_no_phases_whatever_changes(db):
    experiment = create()
    experiment_update(
        experiment=experiment, data={"traffic": 0.3}, partial=True, actor=None, source="test"
    )
    experiment_rotate_salt(experiment=experiment, confirm=True, actor=None, source="test")
    assert phases(experiment) == []


def test_salt_rotation_starts_a_phase_with_the_new_salt(db):
    experiment = experiment_activate(experiment=create(), actor=None, source="test")
    experiment, _ = experiment_rotate_salt(
        experiment=experiment, confirm=True, actor=None, source="test"
    )
    first, second = phases(experiment)
    assert first["salt"] != second["salt"] == experiment.salt


def test_first_assignments_record_their_phase_and_manual_ones_none(db, staff_user):
    experiment = experiment_activate(experiment=create(), actor=None, source="test")
    early, late, forced = UserFactory.create_batch(3)
    assignment_assign(experiment_key="phased", user=early)
    experiment_update(
        experiment=experiment,
        data={"variants": two_variants(0.8, 0.2)},
        partial=True,
        actor=None,
        source="test",
    )
    assignment_assign(experiment_key="phased", user=late)
    assignment_assign(experiment_key="phased", user=early)  # sticky: keeps phase 1
    assignment_override(
        experiment=experiment, user=forced, variant="treatment", actor=staff_user, source="t"
    )

    recorded = dict(Assignment.objects.filter(experiment=experiment).values_list("user", "phase"))
    assert recorded == {early.pk: 1, late.pk: 2, forced.pk: None}


def test_end_users_read_phases_of_active_experiments_only(db, user):
    live = experiment_activate(experiment=create(), actor=None, source="test")
    ended = experiment_activate(experiment=create(key="done"), actor=None, source="test")
    experiment_end(experiment=ended, actor=None, source="test")
    with connection.cursor() as cursor:
        cursor.execute("set local role recsys_authenticated")
        cursor.execute("select set_config('app.user_id', %s, true)", [str(user.pk)])
        cursor.execute("select experiment_id from rec_experiment_phases")
        visible = [row[0] for row in cursor.fetchall()]
        cursor.execute("reset role")
    assert visible == [live.pk]
