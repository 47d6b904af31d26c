import pytest

from recsys_experiments.lib.errors import IllegalTransition, InvalidInput
from recsys_experiments.models import AuditEntry, Experiment
from recsys_experiments.services.assignments import assignment_override, assignment_reset
from recsys_experiments.services.experiments import (
    experiment_activate,
    experiment_create,
    experiment_duplicate,
    experiment_end,
    experiment_rotate_salt,
    experiment_update,
)
from tests.factories.experiments import ExperimentFactory, two_variants
from tests.factories.users import UserFactory


def create(actor=None, **overrides):
    data = {"key": "swipe_blend_test", "variants": two_variants(0.3, 0.7), **overrides}
    return experiment_create(data=data, actor=actor, source="test")


def test_lifecycle_is_draft_active_ended_and_audited(db, staff_user):
    experiment = create(actor=staff_user)
    assert experiment.status == "draft" and experiment.started_at is None

    experiment = experiment_activate(experiment=experiment, actor=staff_user, source="test")
    assert experiment.status == "active" and experiment.started_at is not None
    started = experiment.started_at

    experiment = experiment_end(experiment=experiment, actor=staff_user, source="test")
    assert experiment.status == "ended" and experiment.ended_at >= started
    assert experiment.started_at == started

    actions = list(
        AuditEntry.objects.filter(experiment=experiment)
        .order_by("id")
        .values_list("action", "actor", "source")
    )
    assert actions == [
        ("create", staff_user.pk, "test"),
        ("activate", staff_user.pk, "test"),
        ("end", staff_user.pk, "test"),
    ]


@pytest.mark.parametrize("status", ["active", "ended"])
def test_only_drafts_activate(db, status):
    experiment = create()
    experiment_activate(experiment=experiment, actor=None, source="test")
    if status == "ended":
        experiment_end(experiment=experiment, actor=None, source="test")

    with pytest.raises(IllegalTransition):
        experiment_activate(experiment=experiment, actor=None, source="test")


def test_drafts_cannot_end(db):
    with pytest.raises(IllegalTransition):
        experiment_end(experiment=create(), actor=None, source="test")


def test_key_is_editable_in_draft_and_fixed_once_active(db):
    experiment = create()
    experiment = experiment_update(
        experiment=experiment, data={"key": "renamed"}, partial=True, actor=None, source="test"
    )
    assert experiment.key == "renamed"

    experiment_activate(experiment=experiment, actor=None, source="test")
    with pytest.raises(IllegalTransition):
        experiment_update(
            experiment=experiment, data={"key": "again"}, partial=True, actor=None, source="test"
        )
    assert Experiment.objects.get(pk=experiment.pk).key == "renamed"


def test_update_audits_before_and_after_and_updated_at_moves(db):
    experiment = create()
    created_updated_at = experiment.updated_at

    experiment = experiment_update(
        experiment=experiment,
        data={"description": "new words"},
        partial=True,
        actor=None,
        source="test",
    )

    entry = AuditEntry.objects.get(experiment=experiment, action="update")
    assert entry.before["description"] == ""
    assert entry.after["description"] == "new words"
    assert experiment.updated_at > created_updated_at


def test_ended_experiments_take_only_description_edits(db):
    experiment = create()
    experiment_activate(experiment=experiment, actor=None, source="test")
    experiment_end(experiment=experiment, actor=None, source="test")

    experiment_update(
        experiment=experiment, data={"description": "why"}, partial=True, actor=None, source="test"
    )
    with pytest.raises(IllegalTransition):
        experiment_update(
            experiment=experiment, data={"traffic": 0.5}, partial=True, actor=None, source="test"
        )


def test_duplicate_is_a_new_draft_with_new_salt(db):
    original = create(traffic=0.4, targeting={"platform": "ios"})
    experiment_activate(experiment=original, actor=None, source="test")
    experiment_end(experiment=original, actor=None, source="test")

    copy = experiment_duplicate(experiment=original, actor=None, source="test")
    second = experiment_duplicate(experiment=original, actor=None, source="test")

    assert (copy.key, second.key) == ("swipe_blend_test_copy", "swipe_blend_test_copy2")
    assert copy.status == "draft" and copy.started_at is None
    assert copy.variants == original.variants
    assert (copy.traffic, copy.platform) == (0.4, "ios")
    assert copy.salt != original.salt


def test_rotate_salt_requires_confirmation_and_changes_nothing_without_it(db):
    experiment = create()
    with pytest.raises(InvalidInput) as raised:
        experiment_rotate_salt(experiment=experiment, confirm=False, actor=None, source="test")

    assert "confirm" in raised.value.errors
    assert Experiment.objects.get(pk=experiment.pk).salt == experiment.salt
    assert not AuditEntry.objects.filter(action="rotate_salt").exists()


def test_a_rejected_create_writes_nothing(db):
    with pytest.raises(InvalidInput):
        create(variants=two_variants(0.3, 0))
    create()
    with pytest.raises(InvalidInput) as raised:
        create()

    assert "key" in raised.value.errors
    assert Experiment.objects.count() == 1
    assert AuditEntry.objects.count() == 1


def test_an_experiment_is_live_in_the_transaction_that_activates_it(db, user):
    from django.db import connection

    experiment = experiment_activate(experiment=create(), actor=None, source="test")

    with connection.cursor() as cursor:
        cursor.execute("select rec_assign_variant(%s, %s)", [experiment.key, user.pk])
        assert cursor.fetchone()[0] in {"control", "treatment"}


# --- renaming a draft's variants while users are forced into them ------------------------------


def force(experiment, variant, users):
    for user in users:
        assignment_override(
            experiment=experiment, user=user, variant=variant, actor=None, source="test"
        )


def renamed(*names):
    return [{"name": name, "weight": 1 / len(names), "config": {}} for name in names]


def test_a_rename_dropping_overridden_variants_is_refused_naming_them_and_their_users(db):
    experiment = create()
    force(experiment, "control", UserFactory.create_batch(2))
    force(experiment, "treatment", [UserFactory()])

    with pytest.raises(InvalidInput) as raised:
        experiment_update(
            experiment=experiment,
            data={"variants": renamed("a", "b")},
            partial=True,
            actor=None,
            source="test",
        )

    [reason] = raised.value.errors["variants"]
    assert '"control" (2 users)' in reason and '"treatment" (1 user)' in reason
    assert Experiment.objects.get(pk=experiment.pk).variant_names == ["control", "treatment"]
    assert not AuditEntry.objects.filter(action="update").exists()


def test_a_rename_keeping_every_overridden_variant_is_allowed(db):
    experiment = create()
    force(experiment, "control", [UserFactory()])

    experiment = experiment_update(
        experiment=experiment,
        data={"variants": renamed("control", "bold", "quiet")},
        partial=True,
        actor=None,
        source="test",
    )

    assert experiment.variant_names == ["control", "bold", "quiet"]
    assert list(experiment.assignments.values_list("variant", flat=True)) == ["control"]


def test_after_a_reset_the_variant_can_go(db):
    experiment = create()
    user = UserFactory()
    force(experiment, "treatment", [user])
    assignment_reset(experiment=experiment, user=user, actor=None, source="test")

    experiment = experiment_update(
        experiment=experiment,
        data={"variants": renamed("control", "bold")},
        partial=True,
        actor=None,
        source="test",
    )

    assert experiment.variant_names == ["control", "bold"]


# --- duplicate ---------------------------------------------------------------------------------


def test_duplicate_without_a_free_copy_key_is_invalid_input(db):
    original = create(key="popular")
    Experiment.objects.bulk_create(
        ExperimentFactory.build(key=f"popular_copy{'' if n == 1 else n}") for n in range(1, 1000)
    )

    with pytest.raises(InvalidInput) as raised:
        experiment_duplicate(experiment=original, actor=None, source="test")

    assert "key" in raised.value.errors
