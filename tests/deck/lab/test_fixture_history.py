"""Fixtures with history: experiments, assignments, impressions, outcomes and conversions,
validated by path, loaded through the production paths in one transaction, idempotent, with
an evidence file, and `--reset` removing exactly what the fixture loaded."""

import copy
import hashlib
import io
import json
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from deck.lab.fixture_history import request_uuid
from deck.lab.fixtures import fixture_user_id, load_fixture
from deck.services import deck_build
from recsys_experiments.db_roles import END_USER_ROLE, acting_as
from recsys_experiments.lib.assignment import ExperimentSpec, pick_variant
from recsys_experiments.lib.errors import InvalidInput
from recsys_experiments.models import Assignment, Experiment
from telemetry.models import Conversion, Impression, Outcome
from telemetry.services import conversions_record, outcomes_record
from tests.factories.catalog import MediaItemFactory
from tests.factories.users import UserFactory

TABLES = [
    "rec_impressions",
    "rec_outcomes",
    "rec_conversions",
    "rec_user_experiment_assignments",
    "accounts_user",
]


@pytest.fixture(autouse=True)
def evidence_root(settings, tmp_path):
    settings.FIXTURE_EVIDENCE_ROOT = str(tmp_path / "evidence")
    return tmp_path / "evidence"


def history_fixture():
    return {
        "name": "shop",
        "experiments": [
            {
                "key": "shop_blend",
                "variants": [
                    {"name": "control", "weight": 0.5, "config": {}},
                    {"name": "treatment", "weight": 0.5, "config": {"cf_weight": 0.8}},
                ],
                "salt": "shop-salt",
                "status": "active",
                "started_at": "2025-01-01T00:00:00Z",
            }
        ],
        "catalog": [
            {"id": "m1", "title": "One", "genres": ["drama"]},
            {"id": "m2", "title": "Two", "genres": ["comedy"]},
        ],
        "users": [
            {
                "username": "shop_ana",
                "segment": "buyers",
                "assignments": [
                    {
                        "experiment": "shop_blend",
                        "mode": "manual",
                        "variant": "treatment",
                        "assigned_at": "2025-01-02T00:00:00Z",
                    }
                ],
                "events": [
                    {"kind": "impression", "request": "r1", "item": "m1", "position": 1,
                     "source": "cf", "occurred_at": "2025-01-01T12:00:00Z", "platform": "ios",
                     "app_version": "2.1.0"},
                    {"kind": "impression", "request": "r2", "item": "m1", "position": 1,
                     "source": "cf", "occurred_at": "2025-01-03T12:00:00Z"},
                    {"kind": "impression", "request": "r2", "item": "m2", "position": 2,
                     "source": "genre", "occurred_at": "2025-01-03T12:00:00Z"},
                    {"kind": "outcome", "event_id": "o1", "request": "r2", "item": "m1",
                     "outcome_type": "like", "occurred_at": "2025-01-03T12:01:00Z"},
                    {"kind": "outcome", "event_id": "o2", "request": "r2", "item": "m2",
                     "outcome_type": "rating", "value": 4.5,
                     "occurred_at": "2025-01-03T12:02:00Z"},
                    {"kind": "conversion", "event_id": "c1", "metric_name": "purchase",
                     "value": 12.5, "metadata": {"sku": "x"},
                     "occurred_at": "2025-01-03T13:00:00Z"},
                ],
            },
            {
                "username": "shop_ben",
                "segment": "browsers",
                "assignments": [
                    {"experiment": "shop_blend", "assigned_at": "2025-01-01T06:00:00Z"}
                ],
                "events": [
                    {"kind": "impression", "request": "r1", "item": "m2", "position": 1,
                     "source": "popularity", "occurred_at": "2025-01-02T00:00:00Z",
                     "experiments": {"shop_blend": "control"}},
                    {"kind": "conversion", "event_id": "c1", "metric_name": "watch_time",
                     "value": 30, "occurred_at": "2025-01-02T01:00:00Z"},
                ],
            },
            {"username": "shop_cold", "segment": "browsers"},
        ],
    }  # fmt: skip


def hashed(user_id: str) -> str:
    """shop_blend's variant for a user by the Python twin of rec_pick_variant."""
    spec = ExperimentSpec(
        salt="shop-salt", variant_names=["control", "treatment"], weights=[0.5, 0.5]
    )
    return pick_variant(spec, user_id)


def load_cmd(path, *args):
    out = io.StringIO()
    call_command("load_fixture", str(path), *args, stdout=out)
    return out.getvalue()


def write(tmp_path, data, name="shop.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_history_loads_through_the_production_paths_with_tags_at_event_time(db):
    counts = load_fixture(history_fixture())

    ana = fixture_user_id("shop", "shop_ana")
    ben = fixture_user_id("shop", "shop_ben")
    tags = {
        (str(i.rec_request_id), i.position): i.request_context
        for i in Impression.objects.filter(user_id=ana)
    }
    r1, r2 = (str(request_uuid("shop", "shop_ana", key)) for key in ("r1", "r2"))
    # Before the manual assignment: untagged; after it: the manual variant.
    assert tags == {
        (r1, 1): {"experiments": {}, "platform": "ios", "app_version": "2.1.0"},
        (r2, 1): {"experiments": {"shop_blend": "treatment"}, "platform": None,
                  "app_version": None},
        (r2, 2): {"experiments": {"shop_blend": "treatment"}, "platform": None,
                  "app_version": None},
    }  # fmt: skip
    assert Impression.objects.get(user_id=ana, position=1, rec_request_id=r1).created_at == (
        datetime(2025, 1, 1, 12, tzinfo=UTC)
    )
    manual = Assignment.objects.get(user_id=ana)
    assert (manual.variant, manual.assignment_mode, manual.assigned_at) == (
        "treatment",
        "manual",
        datetime(2025, 1, 2, tzinfo=UTC),
    )
    # Auto: the hash decides (the Python twin agrees), backdated to assigned_at.
    experiment = Experiment.objects.get(key="shop_blend")
    auto = Assignment.objects.get(user_id=ben)
    assert auto.assignment_mode == "auto"
    assert auto.variant == hashed(str(ben))
    assert experiment.started_at == datetime(2025, 1, 1, tzinfo=UTC)
    # An explicit tag is kept as given.
    assert Impression.objects.get(user_id=ben).request_context["experiments"] == {
        "shop_blend": "control"
    }
    rating = Outcome.objects.get(user_id=ana, event_id="o2")
    assert (str(rating.rec_request_id), rating.value) == (r2, 4.5)
    purchase = Conversion.objects.get(user_id=ana)
    assert purchase.request_context == {"experiments": {"shop_blend": "treatment"}}
    assert Conversion.objects.get(user_id=ben).request_context == {
        "experiments": {"shop_blend": auto.variant}
    }
    assert counts["tables"] == {
        "accounts_user": {"inserted": 3, "already_present": 0},
        "media_items": {"inserted": 2, "already_present": 0},
        "rec_conversions": {"inserted": 2, "already_present": 0},
        "rec_experiments": {"inserted": 1, "already_present": 0},
        "rec_impressions": {"inserted": 4, "already_present": 0},
        "rec_outcomes": {"inserted": 2, "already_present": 0},
        "rec_user_experiment_assignments": {"inserted": 2, "already_present": 0},
    }
    assert counts["segment_counts"] == {
        "browsers": {"users": 2, "impressions": 1, "outcomes": 0, "conversions": 1},
        "buyers": {"users": 1, "impressions": 3, "outcomes": 2, "conversions": 1},
    }


def row_counts():
    with connection.cursor() as cursor:
        counts = {}
        for table in TABLES:
            cursor.execute(f"select count(*) from {table}")
            counts[table] = cursor.fetchone()[0]
        return counts


def test_reloading_adds_nothing(db):
    load_fixture(history_fixture())
    before = row_counts()

    again = load_fixture(history_fixture())

    assert row_counts() == before
    assert all(tally["inserted"] == 0 for tally in again["tables"].values())
    assert again["tables"]["rec_impressions"] == {"inserted": 0, "already_present": 4}


def mutate(path, value):
    """A copy of the fixture with `value` set at `path` (a list of keys/indexes)."""
    data = copy.deepcopy(history_fixture())
    target = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return data


ANA_EVENTS = ["users", 0, "events"]


@pytest.mark.parametrize(
    ("path", "value", "field", "reason"),
    [
        ([*ANA_EVENTS, 1, "occurred_at"], "2025-02-30T00:00:00Z", "users[0].events[1].occurred_at",
         "real date"),
        ([*ANA_EVENTS, 1, "occurred_at"], "2999-01-01T00:00:00Z", "users[0].events[1].occurred_at",
         "in the future"),
        ([*ANA_EVENTS, 1, "occurred_at"], 17, "users[0].events[1].occurred_at", "ISO 8601"),
        ([*ANA_EVENTS, 1, "occurred_at"], None, "users[0].events[1].occurred_at", "required"),
        ([*ANA_EVENTS, 1, "source"], "c\x00f", "users[0].events[1].source", "NUL"),
        ([*ANA_EVENTS, 5, "metadata"], {"k": "\x00"}, "users[0].events[5].metadata.k", "NUL"),
        ([*ANA_EVENTS, 1, "item"], "m404", "users[0].events[1].item", "an id from catalog"),
        ([*ANA_EVENTS, 1, "position"], "1", "users[0].events[1].position", "integer"),
        ([*ANA_EVENTS, 1, "kind"], "click", "users[0].events[1].kind", "impression, outcome"),
        ([*ANA_EVENTS, 3, "request"], "r9", "users[0].events[3].request", "not served"),
        ([*ANA_EVENTS, 2, "item"], "m1", "users[0].events[2].item", "already"),
        ([*ANA_EVENTS, 4, "event_id"], "o1", "users[0].events[4].event_id", "duplicates"),
        ([*ANA_EVENTS, 5, "event_id"], "o1", "users[0].events[5].event_id", "duplicates"),
        ([*ANA_EVENTS, 4, "value"], 7, "users[0].events[4].value", "0.5 to 5"),
        ([*ANA_EVENTS, 3, "occurred_at"], "2025-01-03T11:00:00Z",
         "users[0].events[3].occurred_at", "before the impression"),
        ([*ANA_EVENTS, 5, "value"], "12", "users[0].events[5].value", "finite number"),
        ([*ANA_EVENTS, 5, "metric_name"], "Bad Name", "users[0].events[5].metric_name",
         "lowercase"),
        ([*ANA_EVENTS, 5, "surprise"], 1, "users[0].events[5].surprise", "not a field"),
        ([*ANA_EVENTS, 1, "experiments"], {"shop_blend": "nope"},
         "users[0].events[1].experiments.shop_blend", "not a variant"),
        (["users", 0, "assignments", 0, "variant"], None, "users[0].assignments[0].variant",
         "required for a manual"),
        (["users", 0, "assignments", 0, "mode"], "sometimes", "users[0].assignments[0].mode",
         "auto or manual"),
        (["users", 0, "assignments", 0, "assigned_at"], "2025-13-01T00:00:00Z",
         "users[0].assignments[0].assigned_at", "real date"),
        (["users", 0, "events"], {"not": "a list"}, "users[0].events", "must be a list"),
        ([*ANA_EVENTS, 5, "metadata"], {"on": datetime(2025, 1, 1)},
         "users[0].events[5].metadata", "JSON values only"),
        ([*ANA_EVENTS, 5, "metadata"], {"blob": "x" * 5000}, "users[0].events[5].metadata",
         "4096 bytes"),
        (["users", 0, "traits"], {"since": datetime(2025, 1, 1)}, "users[0].traits",
         "JSON values only"),
        (["users", 0, "traits"], {"k": "a\x00"}, "users[0].traits.k", "NUL"),
        (["experiments", 0, "variants"], [], "experiments[0].variants", ""),
        (["experiments", 0, "status"], "ended", "experiments[0].status", "draft or active"),
        (["experiments", 0, "started_at"], "3000-01-01T00:00:00Z",
         "experiments[0].started_at", "future"),
    ],
)  # fmt: skip
def test_a_bad_field_is_named_by_path_and_nothing_is_written(db, path, value, field, reason):
    with pytest.raises(InvalidInput) as error:
        load_fixture(mutate(path, value))

    assert field in error.value.errors, error.value.errors
    assert any(reason in message for message in error.value.errors[field])
    assert row_counts()["accounts_user"] == 0


def test_an_unknown_experiment_and_a_disagreeing_auto_variant_are_refused_whole(db):
    experiment_variant = hashed(str(fixture_user_id("shop", "shop_ben")))
    wrong = "control" if experiment_variant == "treatment" else "treatment"
    data = mutate(["users", 1, "assignments", 0, "variant"], wrong)

    with pytest.raises(InvalidInput) as error:
        load_fixture(data)
    assert "the hash assigns" in error.value.errors["users[1].assignments[0].variant"][0]

    data = mutate(["users", 1, "assignments", 0, "experiment"], "no_such_test")
    with pytest.raises(InvalidInput) as error:
        load_fixture(data)
    assert "users[1].assignments[0].experiment" in error.value.errors
    assert row_counts() == dict.fromkeys(TABLES, 0)
    assert not Experiment.objects.exists()


def test_the_command_writes_evidence_with_the_input_checksum(db, tmp_path):
    path = write(tmp_path, history_fixture())
    evidence_dir = tmp_path / "proof"

    output = load_cmd(path, "--evidence-dir", str(evidence_dir))

    [written] = evidence_dir.glob("*.json")
    assert f"evidence: {written}" in output
    evidence = json.loads(written.read_text())
    assert evidence["fixture"] == "shop"
    assert evidence["input_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert evidence["tables"]["rec_outcomes"] == {"inserted": 2, "already_present": 0}
    assert evidence["segments"]["buyers"] == {
        "users": 1,
        "impressions": 3,
        "outcomes": 2,
        "conversions": 1,
    }
    assert datetime.fromisoformat(evidence["loaded_at"]).tzinfo is not None
    assert "rec_impressions: 4 inserted, 0 already present" in output


def test_the_default_evidence_directory_is_per_fixture(db, tmp_path, evidence_root):
    load_cmd(write(tmp_path, history_fixture()))

    assert len(list((evidence_root / "shop").glob("load-*.json"))) == 1


def test_a_refused_load_writes_no_evidence(db, tmp_path, evidence_root):
    path = write(tmp_path, mutate([*ANA_EVENTS, 3, "request"], "r9"))

    with pytest.raises(CommandError, match=r"users\[0\]\.events\[3\]\.request"):
        load_cmd(path)

    assert not evidence_root.exists()


def checksums(exclude_users):
    """md5 of every row of the user tables outside `exclude_users`, table by table."""
    sums = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            column = "id" if table == "accounts_user" else "user_id"
            cursor.execute(
                f"select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), '')) "
                f"from {table} as t where not {column} = any(%s::uuid[])",
                [list(exclude_users)],
            )
            sums[table] = cursor.fetchone()
    return sums


def test_reset_removes_exactly_what_the_fixture_loaded(db, tmp_path, catalog):
    other = UserFactory()
    experiment_users = [fixture_user_id("shop", u) for u in ("shop_ana", "shop_ben", "shop_cold")]
    path = write(tmp_path, history_fixture())
    load_cmd(path)
    # Someone else's history, written while the fixture's experiment runs.
    deck = deck_build(user=other, limit=3, platform=None, app_version=None)
    with acting_as(END_USER_ROLE, other.pk):
        outcomes_record(
            user=other,
            outcomes=[
                {
                    "event_id": "theirs",
                    "rec_request_id": deck["rec_request_id"],
                    "media_item_id": deck["items"][0]["media_item_id"],
                    "outcome_type": "like",
                }
            ],
        )
        conversions_record(
            user=other, conversions=[{"event_id": "t", "metric_name": "purchase", "value": 1}]
        )
    item = MediaItemFactory()
    before = checksums(experiment_users)
    assert before["rec_user_experiment_assignments"][0] == 1  # other joined shop_blend

    output = load_cmd(path, "--reset")

    assert "removed 2 outcomes, 4 impressions, 3 users" in output
    assert "and 2 conversions, 2 assignments" in output
    assert checksums(experiment_users) == before
    assert item.pk and Outcome.objects.filter(user=other).count() == 1
    # ... and the reload put the fixture's rows back.
    assert Conversion.objects.filter(user_id__in=experiment_users).count() == 2
