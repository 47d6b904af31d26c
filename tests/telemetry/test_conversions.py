"""Conversions (rec_conversions) through telemetry.services.conversions_record: validation per
item, idempotence on a per-user event id, the experiments tag at occurred_at, and RLS."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from recsys_experiments.db_roles import END_USER_ROLE, SERVICE_ROLE, acting_as
from recsys_experiments.models import Assignment, ExperimentPhase
from telemetry.models import Conversion
from telemetry.services import conversions_record
from tests.factories.experiments import ActiveExperimentFactory, ExperimentFactory
from tests.factories.users import UserFactory

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def scalar(query, params=()):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchone()[0]


def refused(query, params=()):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(query, params)


def purchase(event_id="p-1", **extra):
    return {
        "event_id": event_id,
        "metric_name": "purchase",
        "value": 9.99,
        "metadata": {"currency": "EUR", "items": [{"sku": "a", "qty": 2}]},
        "occurred_at": "2026-03-02T10:00:00Z",
        **extra,
    }


def test_a_batch_is_stored_once_per_event_id(db):
    user = UserFactory()

    first = conversions_record(
        user=user, conversions=[purchase("p-1"), purchase("p-2", value=3), purchase("p-1")]
    )
    again = conversions_record(user=user, conversions=[purchase("p-2"), purchase("p-3")])

    assert (first["accepted"], first["duplicate"], first["rejected"]) == (2, 1, 0)
    assert [r["status"] for r in again["results"]] == ["duplicate", "accepted"]
    stored = Conversion.objects.get(user=user, event_id="p-2")
    assert (stored.metric_name, stored.value, stored.occurred_at) == (
        "purchase",
        3.0,
        datetime(2026, 3, 2, 10, tzinfo=UTC),
    )
    assert stored.metadata == {"currency": "EUR", "items": [{"sku": "a", "qty": 2}]}
    assert Conversion.objects.filter(user=user).count() == 3


def test_event_ids_are_per_user(db):
    alice, bob = UserFactory(), UserFactory()
    conversions_record(user=alice, conversions=[purchase("same")])

    result = conversions_record(user=bob, conversions=[purchase("same")])

    assert result["accepted"] == 1 and Conversion.objects.filter(event_id="same").count() == 2


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"event_id": ""}, "event_id", "a string of 1-128"),
        ({"event_id": "x\x00y"}, "event_id", "NUL"),
        ({"metric_name": "Purchase!"}, "metric_name", "lowercase"),
        ({"metric_name": "a\x00b"}, "metric_name", "NUL"),
        ({"metric_name": None}, "metric_name", "required"),
        ({"value": "9.99"}, "value", "finite number"),
        ({"value": True}, "value", "finite number"),
        ({"value": float("nan")}, "value", "finite number"),
        ({"value": float("inf")}, "value", "finite number"),
        ({"value": 10**400}, "value", "finite number"),
        ({"metadata": ["a"]}, "metadata", "must be an object"),
        ({"metadata": {"k": "v\x00"}}, "metadata", "NUL"),
        ({"metadata": {"k\x00": 1}}, "metadata", "NUL"),
        ({"metadata": {"a": {"b": {"c": {"d": {"e": 1}}}}}}, "metadata", "nested too deeply"),
        ({"metadata": {"blob": "x" * 5000}}, "metadata", "at most 4096 bytes"),
        ({"metadata": {"n": float("nan")}}, "metadata", "finite"),
        ({"occurred_at": "2026-02-30T10:00:00Z"}, "occurred_at", "real date"),
        ({"occurred_at": 1700000000}, "occurred_at", "ISO 8601"),
        ({"occurred_at": "1969-12-31T23:59:59Z"}, "occurred_at", "before 1970"),
        ({"surprise": 1}, "surprise", "not a conversion field"),
    ],
)
def test_a_bad_field_rejects_only_its_item_and_names_the_field(db, change, field, reason):
    user = UserFactory()

    result = conversions_record(
        user=user, conversions=[{**purchase("bad"), **change}, purchase("ok")]
    )

    bad, good = result["results"]
    assert bad["status"] == "rejected" and reason in bad["errors"][field]
    assert good["status"] == "accepted"
    assert list(Conversion.objects.values_list("event_id", flat=True)) == ["ok"]


def test_the_future_guard_allows_five_minutes_of_clock_skew(db):
    user = UserFactory()
    now = timezone.now()
    soon = (now + timedelta(minutes=4)).isoformat()
    later = (now + timedelta(minutes=6)).isoformat()

    result = conversions_record(
        user=user,
        conversions=[purchase("soon", occurred_at=soon), purchase("later", occurred_at=later)],
    )

    assert [r["status"] for r in result["results"]] == ["accepted", "rejected"]
    assert "5 minutes in the future" in result["results"][1]["errors"]["occurred_at"]


def test_a_non_object_item_and_no_occurred_at(db):
    user = UserFactory()

    result = conversions_record(
        user=user, conversions=["junk", {"event_id": "e", "metric_name": "watch_time", "value": 2}]
    )

    assert result["results"][0]["errors"] == {"conversions[0]": "must be an object"}
    assert result["results"][1]["status"] == "accepted"
    assert Conversion.objects.get(event_id="e").metadata == {}


def _phase(experiment, number, started_at, ended_at=None):
    return ExperimentPhase.objects.create(
        experiment=experiment,
        number=number,
        started_at=started_at,
        ended_at=ended_at,
        **experiment.phase_definition(),
    )


def _assign(experiment, user, variant, at):
    Assignment.objects.create(experiment=experiment, user=user, variant=variant, assigned_at=at)


def tags_at(user, *moments):
    events = [
        purchase(f"at-{i}", occurred_at=moment.isoformat()) for i, moment in enumerate(moments)
    ]
    conversions_record(user=user, conversions=events)
    return [
        Conversion.objects.get(user=user, event_id=f"at-{i}").request_context["experiments"]
        for i in range(len(moments))
    ]


def test_each_conversion_carries_the_assignments_in_force_at_its_time(db):
    user = UserFactory()
    # Running from T0 for five days, then ended.
    ended = ActiveExperimentFactory(
        key="ended_test", status="ended", started_at=T0, ended_at=T0 + timedelta(days=5)
    )
    _phase(ended, 1, T0, T0 + timedelta(days=5))
    _assign(ended, user, "treatment", T0 + timedelta(days=1))
    # Phase 1 for two days, a gap (none open), phase 2 from day 3 on.
    phased = ActiveExperimentFactory(key="phased_test", started_at=T0)
    _phase(phased, 1, T0, T0 + timedelta(days=2))
    _phase(phased, 2, T0 + timedelta(days=3))
    _assign(phased, user, "control", T0)
    # No phase rows: started_at / ended_at count.
    bare = ActiveExperimentFactory(key="bare_test", started_at=T0 + timedelta(days=4))
    _assign(bare, user, "control", T0 + timedelta(days=4))
    draft = ExperimentFactory(key="draft_test")
    _assign(draft, user, "control", T0)

    tags = tags_at(
        user,
        T0 + timedelta(hours=12),  # before the ended test's assignment
        T0 + timedelta(days=1, hours=1),  # both phased and ended
        T0 + timedelta(days=2, hours=12),  # between phases of phased_test
        T0 + timedelta(days=4, hours=1),  # all three running
        T0 + timedelta(days=6),  # ended_test is over
    )

    assert tags == [
        {"phased_test": "control"},
        {"ended_test": "treatment", "phased_test": "control"},
        {"ended_test": "treatment"},
        {"bare_test": "control", "ended_test": "treatment", "phased_test": "control"},
        {"bare_test": "control", "phased_test": "control"},
    ]


def test_an_end_user_records_their_own_conversions_tagged_under_rls(db):
    user = UserFactory()
    ended = ActiveExperimentFactory(
        key="over", status="ended", started_at=T0, ended_at=T0 + timedelta(days=5)
    )
    _assign(ended, user, "treatment", T0)

    with acting_as(END_USER_ROLE, user.pk):
        result = conversions_record(
            user=user, conversions=[purchase("mine", occurred_at="2026-03-02T00:00:00Z")]
        )
        # The end user cannot read the ended experiment, but the tag still names it.
        assert scalar("select count(*) from rec_experiments where key = 'over'") == 0

    assert result["accepted"] == 1
    stored = Conversion.objects.get(event_id="mine")
    assert stored.user_id == user.pk
    assert stored.request_context == {"experiments": {"over": "treatment"}}


@pytest.fixture
def two_users(db):
    alice, bob = UserFactory(), UserFactory()
    conversions_record(user=alice, conversions=[purchase("a-1")])
    conversions_record(user=bob, conversions=[purchase("b-1")])
    return alice, bob


def test_an_end_user_reads_only_their_own_conversions(two_users):
    alice, _ = two_users
    with acting_as(END_USER_ROLE, alice.pk):
        seen = scalar("select array_agg(event_id order by event_id) from rec_conversions")
    with acting_as(END_USER_ROLE, None):
        nobody = scalar("select count(*) from rec_conversions")
    with acting_as(SERVICE_ROLE, alice.pk):
        service = scalar("select count(*) from rec_conversions")

    assert (seen, nobody, service) == (["a-1"], 0, 2)


def test_an_end_user_cannot_write_another_users_conversions(two_users):
    alice, bob = two_users
    insert = (
        "insert into rec_conversions (user_id, event_id, metric_name, value, metadata, "
        "occurred_at, request_context) values (%s, %s, 'purchase', 1, '{}', now(), '{}')"
    )
    with acting_as(END_USER_ROLE, alice.pk):
        refused(insert, [bob.pk, "forged"])
        refused("update rec_conversions set value = 0")
        refused("delete from rec_conversions")
        # Through the service, as the API would call it with the wrong user: refused too.
        with pytest.raises(DatabaseError), transaction.atomic():
            conversions_record(user=bob, conversions=[purchase("forged-2")])
        refused("select rec_experiments_at(%s, now())", [bob.pk])
        with connection.cursor() as cursor:
            cursor.execute(insert, [alice.pk, "own"])

    assert not Conversion.objects.filter(event_id__startswith="forged").exists()
    assert Conversion.objects.get(event_id="own").user_id == alice.pk
    assert Conversion.objects.get(event_id="b-1").value == 9.99


def test_only_the_application_roles_may_call_rec_experiments_at(db):
    function = "rec_experiments_at(uuid, timestamptz)"
    allowed = {
        role: scalar("select has_function_privilege(%s, %s, 'execute')", [role, function])
        for role in ("public", END_USER_ROLE, SERVICE_ROLE)
    }

    assert allowed == {"public": False, END_USER_ROLE: True, SERVICE_ROLE: True}


def test_the_database_refuses_a_non_finite_value_or_a_bad_metric_name(db):
    user = UserFactory()
    insert = (
        "insert into rec_conversions (user_id, event_id, metric_name, value, metadata, "
        "occurred_at, request_context) values (%s, %s, %s, %s, '{}', now(), '{}')"
    )
    refused(insert, [user.pk, "n", "purchase", float("nan")])
    refused(insert, [user.pk, "i", "purchase", float("inf")])
    refused(insert, [user.pk, "m", "Bad Name", 1.0])

    assert Conversion.objects.count() == 0
