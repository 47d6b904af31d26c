"""Read replicas (recsys_experiments/db.py, config/db_routers.py) against a REAL streaming
standby of the test cluster (tests/conftest.py `streaming_standby`): results reads go there,
writes never do, the standby refuses writes, and the diagnostics page shows its lag.

The tests commit (transaction=True): only committed data reaches a standby."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, transaction
from knox.models import AuthToken
from rest_framework.test import APIClient

from recsys_experiments.db import reading, reading_alias, reading_cursor, replica_alias
from recsys_experiments.db_roles import SERVICE_ROLE, acting_as
from recsys_experiments.models import Experiment
from recsys_experiments.services.assignments import assignment_override
from tests.factories.catalog import MediaItemFactory
from tests.factories.experiments import ActiveExperimentFactory
from tests.factories.users import UserFactory
from tests.helpers import admin_page_url

pytestmark = pytest.mark.django_db(transaction=True)


def impression(experiment, user, item) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into rec_impressions (user_id, rec_request_id, media_item_id, position, "
            "source, request_context) values (%s, %s, %s, 1, 'cf', %s::jsonb)",
            [
                user.pk,
                uuid.uuid4(),
                item.pk,
                json.dumps({"experiments": {experiment.key: "treatment"}}),
            ],
        )


@pytest.fixture
def treated(db):
    """An active experiment with one user forced into treatment and one impression."""
    experiment = ActiveExperimentFactory()
    user = UserFactory()
    assignment_override(
        experiment=experiment, user=user, variant="treatment", actor=None, source="t"
    )
    item = MediaItemFactory()
    impression(experiment, user, item)
    return experiment, user, item


def treatment_impressions_today(admin, experiment) -> int:
    response = admin.get(admin_page_url("experiment_results", experiment))
    assert response.status_code == 200
    return response.context["chart_data"]["last_7_days"]["impressions"]["treatment"][-1]


def test_the_admin_results_page_reads_the_standby(admin, treated, replica):
    experiment, user, item = treated
    replica.catch_up()
    with replica.replay_paused():
        impression(experiment, user, item)  # on the primary only, for now
        with replica.counting() as on_replica:
            seen_while_paused = treatment_impressions_today(admin, experiment)
    replica.catch_up()
    seen_after_catch_up = treatment_impressions_today(admin, experiment)

    assert seen_while_paused == 1  # the standby's snapshot, not the primary's 2
    assert seen_after_catch_up == 2
    assert any("rec_variant_daily_metrics_v1" in sql for sql in on_replica)
    assert any("rec_impressions" in sql for sql in on_replica)


def test_the_results_api_reads_the_standby(admin_api_client, treated, replica):
    experiment, *_ = treated
    url = f"/api/v1/admin/experiments/{experiment.key}/metrics"
    with replica.counting() as on_replica:
        response = admin_api_client.get(url)

    assert response.status_code == 200
    assert response.json()["experiment"] == experiment.key
    assert len(on_replica) >= 3  # population, per-user counts, and the ORM reads of the block


def test_a_replica_read_runs_as_the_page_users_role(staff_user, replica):
    """Row-level security judges a replica read as it judges the primary's: the role and
    app.user_id of the default connection's transaction are set on the replica's."""
    with (
        transaction.atomic(),
        acting_as(SERVICE_ROLE, staff_user.pk),
        reading_cursor() as cursor,
    ):
        cursor.execute(
            "select current_user, current_setting('app.user_id', true), "
            "pg_is_in_recovery(), current_setting('transaction_read_only')"
        )
        seen = cursor.fetchone()
    with reading_cursor() as cursor:
        cursor.execute("select current_user, pg_is_in_recovery()")
        outside = cursor.fetchone()

    assert seen == (SERVICE_ROLE, str(staff_user.pk), True, "on")
    assert outside == (connection.settings_dict["USER"], True)


def test_writes_never_touch_the_replica(admin, treated, catalog, replica):
    user = UserFactory()
    _, key = AuthToken.objects.create(user=user)
    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    with replica.counting() as on_replica:
        deck = app.post("/api/v1/deck", {"limit": 3}, format="json").json()
        outcome = {
            "event_id": "evt-1",
            "rec_request_id": deck["rec_request_id"],
            "media_item_id": deck["items"][0]["media_item_id"],
            "outcome_type": "like",
        }
        posted = app.post("/api/v1/outcomes", {"outcomes": [outcome]}, format="json")
        edited = admin.post(
            "/admin/telemetry/metric/add/",
            {
                "key": "replica_rate",
                "name": "Ratings per impression",
                "kind": "ratio",
                "numerator": "rating",
                "denominator": "impression",
                "value": "count",
                "description": "",
            },
        )

    assert posted.status_code == 200, posted.content
    assert posted.json()["results"][0]["status"] == "accepted"
    assert edited.status_code == 302
    assert on_replica == []


def test_an_object_read_on_the_replica_is_saved_on_the_primary(treated, replica):
    experiment, *_ = treated
    with transaction.atomic(), reading():
        copy = Experiment.objects.get(pk=experiment.pk)
        copy.description = "saved from a replica read"
        copy.save(update_fields=["description"])

    assert copy._state.db == DEFAULT_DB_ALIAS
    assert Experiment.objects.get(pk=experiment.pk).description == "saved from a replica read"


def test_the_standby_refuses_writes(treated, replica):
    experiment, *_ = treated
    with pytest.raises(DatabaseError, match="read-only"), transaction.atomic(using=replica.alias):
        Experiment.objects.using(replica.alias).filter(pk=experiment.pk).update(description="x")
    with (
        pytest.raises(DatabaseError, match="read-only"),
        transaction.atomic(using=replica.alias),
        replica.connection.cursor() as cursor,
    ):
        cursor.execute("create table replica_probe (id int)")


def test_a_scratch_database_reads_its_own_default_connection(replica):
    from deck.lab.scratch import using_database

    assert replica_alias() == replica.alias
    with using_database("lab_scratch_not_connected"):
        assert replica_alias() is None
        assert reading_alias() == DEFAULT_DB_ALIAS
    assert replica_alias() == replica.alias


def test_the_diagnostics_page_shows_the_replica_lag(admin, treated, replica):
    experiment, user, item = treated
    replica.catch_up()
    caught_up = admin.get("/admin/recsys/diagnostics/")
    with replica.replay_paused():
        for _ in range(20):
            impression(experiment, user, item)
        behind = admin.get("/admin/recsys/diagnostics/")

    assert caught_up.context["replica"]["bytes_behind"] == 0
    assert caught_up.context["replica"]["in_recovery"] is True
    assert 'id="recsys-replica" class="recsys-card ok"' in caught_up.content.decode()
    assert behind.context["replica"]["bytes_behind"] > 0
    assert "behind the primary" in behind.content.decode()


def test_an_unreachable_replica_is_shown_not_raised(admin, replica):
    replica.connection.close()
    replica.connection.settings_dict["PORT"] = "1"
    page = admin.get("/admin/recsys/diagnostics/")

    assert page.status_code == 200
    assert page.context["replica"]["error"]
    assert "unreachable" in page.content.decode()
    assert page.context["health"]["impressions"] == 0  # read on the primary instead


@pytest.mark.django_db(transaction=False)
def test_without_a_replica_reads_use_the_default_connection(admin):
    """No replica, or one on the primary's own server (a test mirror of "default")."""
    assert reading_alias() == DEFAULT_DB_ALIAS
    page = admin.get("/admin/recsys/diagnostics/")
    assert page.context["replica"] is None
    assert "Read replica lag" not in page.content.decode()
