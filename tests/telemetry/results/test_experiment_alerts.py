"""SRM flags and guardrail breaches of active experiments are alerts (issue 16 §5): in
`manage.py telemetry_health` (a line each, --json, exit 1), the health endpoint and the
diagnostics page; healthy, draft and ended experiments raise none."""

import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from recsys_experiments.lib.statistics import Sequential, ratio_lift, sample_ratio_mismatch
from recsys_experiments.models import Experiment
from telemetry.results.alerts import experiment_alerts
from tests.factories.catalog import MediaItemFactory
from tests.factories.experiments import ActiveExperimentFactory
from tests.factories.users import UserFactory
from tests.telemetry.results.test_phases_and_window import phase

IMPRESSIONS = 10
CONTROL = [4, 5, 6] * 8  # 24 users, like rate 0.5
HARMFUL = [1, 2, 1] * 8  # like rate 0.133: a drop of 0.37
SIMILAR = [6, 4, 5] * 8  # like rate 0.5
LIKE_DROP = {"metric": "like_rate", "max_drop": 0.05}


def today_utc() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def plant(key, likes, guardrails=(), status="active"):
    """An experiment whose phase started yesterday; each user saw IMPRESSIONS impressions
    just after midnight UTC today and liked `likes[variant][i]` of them. All telemetry is
    today's, so the telemetry alerts stay quiet and only the experiment's own can fire."""
    experiment = ActiveExperimentFactory(
        key=key, started_at=today_utc() - timedelta(days=1), guardrails=list(guardrails)
    )
    phase(experiment, 1, experiment.started_at)
    at = today_utc() + timedelta(seconds=1)
    item = MediaItemFactory()
    impressions, outcomes, assignments = [], [], []
    for variant, per_user in likes.items():
        for user, count in zip(UserFactory.create_batch(len(per_user)), per_user, strict=True):
            assignments.append((experiment.pk, user.pk, variant, "auto", 1, today_utc()))
            for n in range(IMPRESSIONS):
                request = uuid.uuid4()
                tags = json.dumps({"experiments": {key: variant}})
                impressions.append((user.pk, request, item.pk, tags, at))
                if n < count:
                    outcomes.append((uuid.uuid4().hex, user.pk, request, item.pk, at, at))
    with connection.cursor() as cursor:
        cursor.executemany(
            "insert into rec_user_experiment_assignments (experiment_id, user_id, variant, "
            "assignment_mode, phase, assigned_at) values (%s, %s, %s, %s, %s, %s)",
            assignments,
        )
        cursor.executemany(
            "insert into rec_impressions (user_id, rec_request_id, media_item_id, position, "
            "source, request_context, created_at) values (%s, %s, %s, 1, 'cf', %s::jsonb, %s)",
            impressions,
        )
        cursor.executemany(
            "insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id, "
            "outcome_type, occurred_at, created_at) values (%s, %s, %s, %s, 'like', %s, %s)",
            outcomes,
        )
    if status != "active":
        Experiment.objects.filter(pk=experiment.pk).update(status=status)
    return experiment


def health(*args):
    """(exit code, text lines, JSON) of telemetry_health."""
    results = []
    for flags in ((), ("--json",)):
        out, code = io.StringIO(), 0
        try:
            call_command("telemetry_health", *args, *flags, stdout=out)
        except CommandError as error:
            code = error.returncode
        results.append((code, out.getvalue()))
    (code, text), (json_code, as_json) = results
    assert code == json_code
    return code, text.splitlines(), json.loads(as_json)


@pytest.fixture
def several(db):
    """A planted SRM (40 users against 8 at 0.5/0.5), a planted like-rate breach, a healthy
    experiment with the same guardrail, and a draft and an ended experiment that breach."""
    return {
        "srm": plant("al_srm", {"control": [5] * 40, "treatment": [5] * 8}),
        "harm": plant("al_harm", {"control": CONTROL, "treatment": HARMFUL}, [LIKE_DROP]),
        "fine": plant("al_fine", {"control": CONTROL, "treatment": SIMILAR}, [LIKE_DROP]),
        "draft": plant(
            "al_draft", {"control": CONTROL, "treatment": HARMFUL}, [LIKE_DROP], "draft"
        ),
        "ended": plant(
            "al_ended", {"control": [5] * 40, "treatment": [5] * 8}, [LIKE_DROP], "ended"
        ),
    }


def test_a_planted_srm_and_a_planted_breach_fire_and_nothing_else(several):
    code, lines, body = health()

    srm = sample_ratio_mismatch([40, 8], [0.5, 0.5])
    drop = ratio_lift(
        numerator=HARMFUL,
        denominator=[IMPRESSIONS] * len(HARMFUL),
        control_numerator=CONTROL,
        control_denominator=[IMPRESSIONS] * len(CONTROL),
        # New experiments use always-valid intervals; the alert reports the interval judged.
        sequential=Sequential(settings.RESULTS_SEQUENTIAL_TUNING),
    )
    assert code == 1
    assert body["active_alerts"] == []  # the telemetry itself is healthy
    assert body["healthy"] is False
    assert [(a["experiment"], a["alert"]) for a in body["experiment_alerts"]] == [
        ("al_harm", "guardrail"),
        ("al_srm", "sample_ratio_mismatch"),
    ]
    harm, mismatch = body["experiment_alerts"]
    assert (harm["metric"], harm["variant"], harm["limit"], harm["threshold"]) == (
        "like_rate",
        "treatment",
        "max_drop",
        0.05,
    )
    assert harm["value"] == pytest.approx(drop.abs_lift)
    assert harm["ci_high"] == pytest.approx(drop.abs_ci_high) and harm["ci_high"] < -0.05
    assert (mismatch["phase"], mismatch["value"]) == (1, pytest.approx(srm["p_value"]))
    assert [line for line in lines if line.startswith("ALERT")] == [
        f"ALERT experiment {harm['message']}",
        f"ALERT experiment {mismatch['message']}",
    ]
    assert harm["message"].startswith(
        "al_harm: guardrail like_rate (treatment) max_drop 0.05 breached in phase 1: value -0.3"
    )
    assert mismatch["message"].startswith("al_srm: sample ratio mismatch in phase 1 (p = ")
    assert "users control 40 / treatment 8 against weights 0.5 / 0.5" in mismatch["message"]
    assert lines[-1] == "unhealthy"


def test_healthy_experiments_raise_no_alert_and_exit_0(db):
    plant("al_fine", {"control": CONTROL, "treatment": SIMILAR}, [LIKE_DROP])
    plant("al_even", {"control": [5] * 24, "treatment": [5] * 24})

    code, lines, body = health()

    assert (code, body["healthy"], body["experiment_alerts"]) == (0, True, [])
    assert lines[-1] == "healthy" and not [line for line in lines if "ALERT" in line]


def test_only_active_experiments_are_read(several):
    with CaptureQueriesContext(connection) as queries:
        experiment_alerts()

    read = " ".join(query["sql"] for query in queries.captured_queries)
    assert "al_srm" in read and "al_harm" in read and "al_fine" in read
    assert "al_draft" not in read and "al_ended" not in read


def test_the_endpoint_gives_the_commands_alerts(several, api_client, staff_user):
    api_client.force_authenticate(staff_user)

    body = api_client.get("/api/v1/admin/telemetry/health").json()

    assert body == health()[2]


def test_the_diagnostics_page_lists_them(several, client, staff_user):
    client.force_login(staff_user)

    html = client.get("/admin/recsys/diagnostics/").content.decode()

    assert "Telemetry needs attention: 0 alerts firing, 2 experiment alerts" in html
    assert html.count('class="recsys-experiment-alert"') == 2
    assert 'data-experiment="al_srm" data-alert="sample_ratio_mismatch"' in html
    assert 'data-experiment="al_harm" data-alert="guardrail"' in html
    assert "guardrail like_rate (treatment)" in html
    assert 'href="/admin/recsys_experiments/experiment/by-key/al_srm/results/"' in html
    assert "al_fine" not in html and "al_ended" not in html


def test_the_diagnostics_page_says_none_when_all_are_healthy(db, client, staff_user):
    plant("al_fine", {"control": CONTROL, "treatment": SIMILAR}, [LIKE_DROP])
    client.force_login(staff_user)

    html = client.get("/admin/recsys/diagnostics/").content.decode()

    assert "Telemetry is healthy" in html
    assert "None: no active experiment has a sample ratio mismatch" in html
