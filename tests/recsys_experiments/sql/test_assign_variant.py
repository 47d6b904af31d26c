"""The SQL assignment engine as the deck and the admin use it: sticky, overridable,
resettable, race-safe, faithful to the weights and to traffic."""

import dataclasses
import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone

from recsys_experiments.lib.assignment import ExperimentSpec, pick_variant
from recsys_experiments.lib.errors import IllegalTransition
from recsys_experiments.models import Assignment, AssignmentMode
from recsys_experiments.services.assignments import assignment_override, assignment_reset
from recsys_experiments.services.experiments import (
    experiment_activate,
    experiment_end,
    experiment_rotate_salt,
    experiment_update,
)
from tests.factories.experiments import ActiveExperimentFactory, ExperimentFactory
from tests.factories.users import UserFactory


def assign(key, user_id, platform=None, app_version=None):
    with connection.cursor() as cursor:
        cursor.execute(
            "select rec_assign_variant(%s, %s, %s, %s)", [key, user_id, platform, app_version]
        )
        return cursor.fetchone()[0]


def create_users(count: int) -> list:
    """Many users at once, straight in SQL (the ORM would take minutes for 10,000)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            insert into accounts_user (id, password, is_superuser, username, first_name,
                                       last_name, email, is_staff, is_active, date_joined)
            select gen_random_uuid(), '!', false, 'bulk-' || gen_random_uuid(), '', '', '',
                   false, true, now()
            from generate_series(1, %s)
            returning id
            """,
            [count],
        )
        return [row[0] for row in cursor.fetchall()]


def assign_all(key: str, user_ids: list) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            "select u, rec_assign_variant(%s, u) from unnest(%s::uuid[]) as u", [key, user_ids]
        )
        return dict(cursor.fetchall())


def spec_of(experiment) -> ExperimentSpec:
    return ExperimentSpec(
        salt=experiment.salt,
        variant_names=experiment.variant_names,
        weights=[variant["weight"] for variant in experiment.variants],
        traffic=experiment.traffic,
    )


def test_assignment_is_sticky_and_stored_as_auto(db):
    experiment = ActiveExperimentFactory()
    user = UserFactory()

    first = assign(experiment.key, user.pk)
    second = assign(experiment.key, user.pk)

    assert first in {"control", "treatment"}
    assert second == first
    stored = Assignment.objects.get(experiment=experiment, user=user)
    assert (stored.variant, stored.assignment_mode) == (first, AssignmentMode.AUTO)
    assert first == pick_variant(spec_of(experiment), str(user.pk))


def test_sticky_variant_survives_a_weight_change(db):
    experiment = ActiveExperimentFactory()
    user = UserFactory()
    before = assign(experiment.key, user.pk)
    flipped = [
        {"name": "control", "weight": 0.01 if before == "control" else 0.99, "config": {}},
        {"name": "treatment", "weight": 0.99 if before == "control" else 0.01, "config": {}},
    ]

    experiment_update(
        experiment=experiment, data={"variants": flipped}, partial=True, actor=None, source="test"
    )

    assert assign(experiment.key, user.pk) == before


def test_manual_override_wins_and_reset_returns_the_hashed_variant(db, staff_user):
    experiment = ActiveExperimentFactory()
    user = UserFactory()
    hashed = assign(experiment.key, user.pk)
    forced = "treatment" if hashed == "control" else "control"

    assignment_override(
        experiment=experiment, user=user, variant=forced, actor=staff_user, source="test"
    )
    assert assign(experiment.key, user.pk) == forced
    stored = Assignment.objects.get(experiment=experiment, user=user)
    assert (stored.assignment_mode, stored.assigned_by_id) == ("manual", staff_user.pk)

    assert assignment_reset(experiment=experiment, user=user, actor=staff_user, source="test")
    assert not Assignment.objects.filter(experiment=experiment, user=user).exists()
    assert assign(experiment.key, user.pk) == hashed


def test_inactive_experiments_assign_null_and_store_nothing(db):
    user = UserFactory()
    draft = ExperimentFactory()
    ended = ActiveExperimentFactory(status="ended", ended_at=timezone.now())
    past_window = ActiveExperimentFactory(ended_at=timezone.now() - timedelta(minutes=1))
    future_start = ActiveExperimentFactory(started_at=timezone.now() + timedelta(hours=1))

    for experiment in (draft, ended, past_window, future_start):
        assert assign(experiment.key, user.pk) is None, experiment.key
    assert assign("no_such_experiment", user.pk) is None
    assert not Assignment.objects.filter(user=user).exists()


def test_an_ended_experiment_assigns_null_and_is_never_reactivated(db):
    experiment = ActiveExperimentFactory()
    user = UserFactory()
    experiment_end(experiment=experiment, actor=None, source="test")

    assert assign(experiment.key, user.pk) is None
    with pytest.raises(IllegalTransition):
        experiment_activate(experiment=experiment, actor=None, source="test")
    experiment.refresh_from_db()
    assert experiment.status == "ended"


def test_targeting_and_namespace_exclude_without_storing(db):
    user = UserFactory()
    ios_only = ActiveExperimentFactory(platform="ios", min_app_version="2.0")
    assert assign(ios_only.key, user.pk, "android", "2.1") is None
    assert assign(ios_only.key, user.pk, "ios", "1.9.9") is None
    assert assign(ios_only.key, user.pk) is None
    assert not Assignment.objects.filter(user=user).exists()
    assert assign(ios_only.key, user.pk, "ios", "2.0.0") in {"control", "treatment"}

    users = create_users(400)
    namespaced = ActiveExperimentFactory(
        namespace_name="deck_ranking", namespace_start=0.0, namespace_end=0.25
    )
    enrolled = [u for u, variant in assign_all(namespaced.key, users).items() if variant]
    assert 60 <= len(enrolled) <= 140  # about a quarter of 400
    assert Assignment.objects.filter(experiment=namespaced).count() == len(enrolled)


def test_rotate_salt_keeps_manual_and_rederives_auto(db):
    experiment = ActiveExperimentFactory()
    users = create_users(200)
    assign_all(experiment.key, users)
    manual_user = UserFactory()
    assignment_override(
        experiment=experiment, user=manual_user, variant="treatment", actor=None, source="test"
    )

    experiment, deleted = experiment_rotate_salt(
        experiment=experiment, confirm=True, actor=None, source="test"
    )

    assert deleted == 200
    assert list(
        Assignment.objects.filter(experiment=experiment).values_list("user", flat=True)
    ) == [manual_user.pk]
    after = assign_all(experiment.key, users)
    assert after == {u: pick_variant(spec_of(experiment), str(u)) for u in users}
    assert assign(experiment.key, manual_user.pk) == "treatment"


def test_distribution_over_10000_users_follows_uneven_weights(db):
    weights = {"control": 0.2, "treatment": 0.3, "treatment_b": 0.5}
    experiment = ActiveExperimentFactory(
        variants=[{"name": n, "weight": w, "config": {}} for n, w in weights.items()]
    )
    users = create_users(10_000)

    variants = list(assign_all(experiment.key, users).values())

    assert None not in variants
    for name, weight in weights.items():
        share = variants.count(name) / len(variants)
        assert abs(share - weight) <= 0.02, (name, share)


def test_half_traffic_enrols_about_half_and_raising_it_moves_nobody(db):
    experiment = ActiveExperimentFactory(traffic=0.5)
    users = create_users(10_000)  # the ±2-point bound is then 4 standard deviations

    at_half = assign_all(experiment.key, users)
    enrolled = {u: v for u, v in at_half.items() if v is not None}
    assert abs(len(enrolled) / len(users) - 0.5) <= 0.02
    assert Assignment.objects.filter(experiment=experiment).count() == len(enrolled)

    # Compare hashed variants, not stored rows: stickiness alone would hide a moved bucket.
    Assignment.objects.filter(experiment=experiment).delete()
    experiment_update(
        experiment=experiment, data={"traffic": 0.9}, partial=True, actor=None, source="test"
    )
    at_ninety = assign_all(experiment.key, users)
    assert all(at_ninety[u] == variant for u, variant in enrolled.items())
    assert abs(sum(v is not None for v in at_ninety.values()) / len(users) - 0.9) <= 0.02


def test_unknown_variant_or_experiment_override_is_an_error_not_a_no_op(db):
    experiment = ActiveExperimentFactory()
    user = UserFactory()
    with connection.cursor() as cursor:
        for key, variant, state in (
            (experiment.key, "nope", "22023"),
            ("missing", "control", "P0002"),
        ):
            with pytest.raises(Exception) as raised:
                cursor.execute(
                    "select rec_set_user_variant(%s, %s, %s, null)", [key, user.pk, variant]
                )
            assert raised.value.__cause__.sqlstate == state
            cursor.execute("rollback")
            cursor.execute("begin")


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_calls_store_one_row_and_agree():
    experiment = ActiveExperimentFactory()
    user = UserFactory()
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    workers = 8
    barrier = threading.Barrier(workers)
    results, errors = [], []

    def first_call():
        try:
            with psycopg.connect(**params, autocommit=True) as conn:
                barrier.wait(timeout=10)
                row = conn.execute(
                    "select rec_assign_variant(%s, %s)", [experiment.key, user.pk]
                ).fetchone()
                results.append(row[0])
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=first_call) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(results) == workers
    assert len(set(results)) == 1
    assert Assignment.objects.filter(experiment=experiment, user=user).count() == 1


def raw_connection_params() -> dict:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return params


def wait_until_blocked_on_locks(count: int, timeout: float = 10) -> None:
    """Until `count` other backends of this database wait for a lock."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "select count(*) from pg_stat_activity"
                " where datname = current_database() and wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= count:
                return
            time.sleep(0.02)
    raise AssertionError(f"{count} backends never waited for a lock together")


def stored_auto_variants(experiment) -> dict:
    return dict(
        Assignment.objects.filter(
            experiment=experiment, assignment_mode=AssignmentMode.AUTO
        ).values_list("user_id", "variant")
    )


@pytest.mark.django_db(transaction=True)
def test_first_assignments_racing_a_rotation_hash_with_the_new_salt():
    # The rotation has changed the salt and deleted the automatic assignments but not yet
    # committed when each user's first assignment starts, on its own connection: they must
    # wait for it and hash with the new salt, never store a variant computed with the salt
    # it replaced (v2 did: it read the salt without a lock).
    experiment = ActiveExperimentFactory()
    candidates = create_users(40)
    old_spec = spec_of(experiment)
    rotated, release = threading.Event(), threading.Event()
    results, errors, new_salt = {}, [], []

    def rotate():
        try:
            with transaction.atomic():
                rotated_experiment, _ = experiment_rotate_salt(
                    experiment=experiment, confirm=True, actor=None, source="test"
                )
                new_salt.append(rotated_experiment.salt)
                rotated.set()
                release.wait(timeout=10)
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            connection.close()

    def first_assignment(user_id):
        try:
            with psycopg.connect(**raw_connection_params(), autocommit=True) as conn:
                row = conn.execute(
                    "select rec_assign_variant(%s, %s)", [experiment.key, user_id]
                ).fetchone()
                results[user_id] = row[0]
        except Exception as error:
            errors.append(error)

    rotator = threading.Thread(target=rotate)
    rotator.start()
    assert rotated.wait(timeout=10)
    new_spec = dataclasses.replace(old_spec, salt=new_salt[0])
    # Users whom the old salt would put elsewhere, so a stale row cannot pass unnoticed.
    users = [
        u for u in candidates if pick_variant(old_spec, str(u)) != pick_variant(new_spec, str(u))
    ][:6]
    assert len(users) == 6
    assigners = [threading.Thread(target=first_assignment, args=(u,)) for u in users]
    for thread in assigners:
        thread.start()
    try:
        wait_until_blocked_on_locks(len(users))
    finally:
        release.set()
        for thread in [rotator, *assigners]:
            thread.join(timeout=30)

    assert errors == []
    expected = {u: pick_variant(new_spec, str(u)) for u in users}
    assert results == expected
    assert stored_auto_variants(experiment) == expected


@pytest.mark.django_db(transaction=True)
def test_assignments_and_rotations_interleaved_leave_only_current_salt_assignments():
    # Users are assigned over and over while the salt rotates, then once more after the last
    # rotation. Sticky rows stored during the race survive that last pass, so every stored
    # automatic assignment must be the hash under the final salt.
    experiment = ActiveExperimentFactory()
    workers, per_worker = 3, 30
    users = create_users(workers * per_worker)
    errors = []
    rotations_done = threading.Event()

    def assign_until_rotations_are_done(chunk):
        try:
            with psycopg.connect(**raw_connection_params(), autocommit=True) as conn:
                while True:
                    finished = rotations_done.is_set()
                    for user_id in chunk:
                        conn.execute("select rec_assign_variant(%s, %s)", [experiment.key, user_id])
                    if finished:
                        return
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)

    def rotate_a_few_times():
        try:
            for _ in range(8):
                experiment_rotate_salt(
                    experiment=experiment, confirm=True, actor=None, source="test"
                )
                time.sleep(0.01)
        except Exception as error:
            errors.append(error)
        finally:
            rotations_done.set()
            connection.close()

    threads = [
        threading.Thread(target=assign_until_rotations_are_done, args=(users[i::workers],))
        for i in range(workers)
    ]
    threads.append(threading.Thread(target=rotate_a_few_times))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    experiment.refresh_from_db()
    spec = spec_of(experiment)
    assert stored_auto_variants(experiment) == {u: pick_variant(spec, str(u)) for u in users}
