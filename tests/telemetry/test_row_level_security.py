"""Row-level security as an end user sees it: switch to recsys_authenticated inside the test's
transaction (SET LOCAL ROLE + app.user_id) and check what it can read and write."""

import uuid

import pytest
from django.db import DatabaseError, connection, transaction

from recsys_experiments.db_roles import END_USER_ROLE, SERVICE_ROLE, acting_as
from recsys_experiments.services.assignments import assignment_override
from tests.factories.catalog import CfRecoFactory, MediaItemFactory, UserGenrePreferenceFactory
from tests.factories.experiments import ActiveExperimentFactory, ExperimentFactory
from tests.factories.users import UserFactory

USER_TABLES = [
    "rec_impressions",
    "rec_outcomes",
    "rec_user_experiment_assignments",
    "recsys_user_prefs",
    "cf_recos",
]


def scalar(query, params=()):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchone()[0]


def refused(query, params=()):
    """The statement fails (and only its savepoint is rolled back)."""
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(query, params)


def give_data(user, experiment, item):
    request = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into rec_impressions (user_id, rec_request_id, media_item_id, position, "
            "source, request_context, created_at) values (%s, %s, %s, 1, 'cf', '{}', now())",
            [user.pk, request, item.pk],
        )
        cursor.execute(
            "insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id, "
            "outcome_type, occurred_at, created_at) values (%s, %s, %s, %s, 'like', now(), now())",
            [f"evt-{user.pk}", user.pk, request, item.pk],
        )
    assignment_override(experiment=experiment, user=user, variant="control", actor=None, source="t")
    UserGenrePreferenceFactory(user=user, genre="drama")
    CfRecoFactory(user=user, media_item=item)
    return request


@pytest.fixture
def world(db):
    item = MediaItemFactory()
    active = ActiveExperimentFactory(key="running")
    ExperimentFactory(key="a_draft")
    ActiveExperimentFactory(key="finished", status="ended")
    alice, bob = UserFactory(), UserFactory()
    return {
        "item": item,
        "experiment": active,
        "alice": alice,
        "bob": bob,
        "alice_request": give_data(alice, active, item),
        "bob_request": give_data(bob, active, item),
    }


@pytest.mark.parametrize("table", USER_TABLES)
def test_an_end_user_reads_only_their_own_rows(world, table):
    alice = world["alice"]
    with acting_as(END_USER_ROLE, alice.pk):
        owners = scalar(f"select array_agg(distinct user_id::text) from {table}")

    assert owners == [str(alice.pk)]


def test_an_end_user_sees_only_active_experiments(world):
    with acting_as(END_USER_ROLE, world["alice"].pk):
        keys = scalar("select array_agg(key order by key) from rec_experiments")

    assert keys == ["running"]


def test_without_a_user_id_an_end_user_sees_nothing(world):
    with acting_as(END_USER_ROLE, None):
        counts = [scalar(f"select count(*) from {table}") for table in USER_TABLES]

    assert counts == [0] * len(USER_TABLES)


def test_an_end_user_cannot_write_experiments_or_assignments(world):
    alice, experiment = world["alice"], world["experiment"]
    with acting_as(END_USER_ROLE, alice.pk):
        refused("update rec_experiments set description = 'hacked'")
        refused(
            "insert into rec_experiments (id, key, variants, salt) "
            "values (gen_random_uuid(), 'mine', '[]', 'x')"
        )
        refused(
            "insert into rec_user_experiment_assignments (experiment_id, user_id, variant) "
            "values (%s, %s, 'treatment')",
            [experiment.pk, alice.pk],
        )
        refused("update rec_user_experiment_assignments set variant = 'treatment'")
        refused("delete from rec_user_experiment_assignments")
        refused("select rec_set_user_variant('running', %s, 'treatment', %s)", [alice.pk, alice.pk])
        refused("select rec_assign_variant('running', %s)", [world["bob"].pk])

    assert scalar("select description from rec_experiments where key = 'running'") != "hacked"


def test_an_end_user_writes_only_their_own_impressions_and_outcomes(world):
    alice, bob, item = world["alice"], world["bob"], world["item"]
    insert_impression = (
        "insert into rec_impressions (user_id, rec_request_id, media_item_id, position, source, "
        "request_context) values (%s, gen_random_uuid(), %s, 1, 'cf', '{}')"
    )
    insert_outcome = (
        "insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id, "
        "outcome_type) values (%s, %s, gen_random_uuid(), %s, 'like')"
    )
    with acting_as(END_USER_ROLE, alice.pk):
        refused(insert_impression, [bob.pk, item.pk])
        refused(insert_outcome, ["forged", bob.pk, item.pk])
        refused("update rec_impressions set position = 9")
        refused("delete from rec_outcomes")
        with connection.cursor() as cursor:
            cursor.execute(insert_impression, [alice.pk, item.pk])
            cursor.execute(insert_outcome, ["mine", alice.pk, item.pk])

    assert scalar("select count(*) from rec_outcomes where event_id = 'forged'") == 0
    assert scalar("select user_id from rec_outcomes where event_id = 'mine'") == alice.pk


def test_the_end_user_role_assigns_itself_through_the_function(world):
    alice = world["alice"]
    other = ActiveExperimentFactory(key="fresh")
    with acting_as(END_USER_ROLE, alice.pk):
        variant = scalar("select rec_assign_variant('fresh', %s)", [alice.pk])

    assert variant in {"control", "treatment"}
    assert other.assignments.get().user_id == alice.pk


@pytest.mark.parametrize("table", [*USER_TABLES, "rec_experiments"])
def test_the_service_role_sees_every_row(world, table):
    with acting_as(SERVICE_ROLE, world["alice"].pk):
        service_count = scalar(f"select count(*) from {table}")
    owner_count = scalar(f"select count(*) from {table}")

    assert service_count == owner_count > 1


def foreign_requests(owner, requests):
    with connection.cursor() as cursor:
        cursor.execute(
            "select array_agg(r order by r) from rec_requests_of_other_users(%s, %s::uuid[]) as r",
            [owner, requests],
        )
        return set(cursor.fetchone()[0] or [])


def test_an_end_user_learns_request_ownership_only_for_themselves(world):
    alice, bob = world["alice"], world["bob"]
    requests = [world["alice_request"], world["bob_request"], uuid.uuid4()]
    with acting_as(END_USER_ROLE, alice.pk):
        assert foreign_requests(alice.pk, requests) == {world["bob_request"]}
        # Claiming to be Bob (to learn which ids are not his) or no one reveals nothing.
        refused("select rec_requests_of_other_users(%s, %s::uuid[])", [bob.pk, requests])
        refused("select rec_requests_of_other_users(null, %s::uuid[])", [requests])
    with acting_as(END_USER_ROLE, None):
        refused("select rec_requests_of_other_users(%s, %s::uuid[])", [alice.pk, requests])


def test_only_the_application_roles_may_check_request_ownership(db):
    function = "rec_requests_of_other_users(uuid, uuid[])"
    allowed = {
        role: scalar("select has_function_privilege(%s, %s, 'execute')", [role, function])
        for role in ("public", END_USER_ROLE, SERVICE_ROLE)
    }

    assert allowed == {"public": False, END_USER_ROLE: True, SERVICE_ROLE: True}
