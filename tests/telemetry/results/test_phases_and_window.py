"""The analysis population and window (issue 13, section 1): results cover the experiment's
run, per phase; SRM per phase against that phase's weights; forced, multi-variant and
before-the-phase users are excluded and counted. Time is fixed by writing rows with explicit
timestamps in the past."""

import io
import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from recsys_experiments.lib.statistics import sample_ratio_mismatch
from recsys_experiments.models import ExperimentPhase
from telemetry.results.analysis import experiment_results
from tests.factories.catalog import MediaItemFactory
from tests.factories.experiments import ActiveExperimentFactory, two_variants
from tests.factories.users import UserFactory
from tests.helpers import api_error_fields

NOW = timezone.now()


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def serve(user, item, key, variant, at, other=None):
    """One impression tagged {key: variant} at `at`; returns its request id."""
    request = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into rec_impressions (user_id, rec_request_id, media_item_id, position, "
            "source, request_context, created_at) values (%s, %s, %s, 1, 'cf', %s::jsonb, %s)",
            [user.pk, request, item.pk, json.dumps({"experiments": {key: variant}}), at],
        )
    return request


def like(user, request, item, at):
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id, "
            "outcome_type, occurred_at, created_at) values (%s, %s, %s, %s, 'like', %s, %s)",
            [uuid.uuid4().hex, user.pk, request, item.pk, at, at],
        )


def assign(experiment, user, variant, *, at, phase=1, mode="auto"):
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into rec_user_experiment_assignments (experiment_id, user_id, variant, "
            "assignment_mode, phase, assigned_at) values (%s, %s, %s, %s, %s, %s)",
            [experiment.pk, user.pk, variant, mode, None if mode == "manual" else phase, at],
        )


def phase(experiment, number, started_at, ended_at=None, weights=(0.5, 0.5)):
    return ExperimentPhase.objects.create(
        experiment=experiment,
        number=number,
        started_at=started_at,
        ended_at=ended_at,
        weights=[{"name": v["name"], "weight": v["weight"]} for v in two_variants(*weights)],
        traffic=1.0,
        targeting={},
        namespace=None,
        salt=experiment.salt,
    )


def like_rate(results, variant):
    [row] = [v for v in results["variants"] if v["variant"] == variant]
    return row["exposed_users"], row["outcomes"]["like"]["converted_users"]


@pytest.fixture
def item(db):
    return MediaItemFactory()


@pytest.fixture
def ended(item):
    """Ran from 35 to 21 days ago (one phase): control 4 users (1 likes), treatment 4 users
    (3 like), spread over the run."""
    experiment = ActiveExperimentFactory(
        key="ended_test", status="ended", started_at=days_ago(35), ended_at=days_ago(21)
    )
    phase(experiment, 1, days_ago(35), days_ago(21))
    for index, user in enumerate(UserFactory.create_batch(8)):
        variant = "control" if index < 4 else "treatment"
        at = days_ago(34 - index)
        assign(experiment, user, variant, at=at)
        request = serve(user, item, "ended_test", variant, at)
        if index in (0, 5, 6, 7):
            like(user, request, item, at)
    return experiment


def test_an_ended_experiment_shows_the_same_numbers_weeks_later(ended):
    on_the_day = experiment_results(ended, now=ended.ended_at + timedelta(minutes=1))
    today = experiment_results(ended)

    assert today == on_the_day
    assert like_rate(today, "control") == (4, 1) and like_rate(today, "treatment") == (4, 3)
    assert today["window"] == {
        "from": ended.started_at.isoformat(),
        "to": ended.ended_at.isoformat(),
    }
    assert today["phase"]["number"] == 1 and len(today["phases"]) == 1


def test_days_are_the_last_days_of_the_run_not_of_today(ended):
    # The last 7 UTC days ending at the run's end: users served 22..28 days ago (indexes 6, 7
    # of treatment are at 28 and 27 days ago; control's are older).
    results = experiment_results(ended, days=7)
    last_day = ended.ended_at.astimezone(UTC).date()

    assert results["window"]["from"] == f"{last_day - timedelta(days=6)}T00:00:00+00:00"
    assert sum(v["exposed_users"] for v in results["variants"]) > 0
    assert like_rate(experiment_results(ended, days=366), "treatment") == (4, 3)


def test_from_and_to_narrow_the_window_to_whole_utc_days(ended):
    day = days_ago(33).astimezone(UTC).date()  # index 1 (control) served that day

    results = experiment_results(ended, date_from=day, date_to=day)

    assert results["window"] == {
        "from": f"{day}T00:00:00+00:00",
        "to": f"{day + timedelta(days=1)}T00:00:00+00:00",
    }
    assert like_rate(results, "control") == (1, 0) and like_rate(results, "treatment") == (0, 0)
    # Outside the run: nothing, and no error.
    empty = experiment_results(ended, date_from=date(2000, 1, 1), date_to=date(2000, 1, 2))
    assert sum(v["exposed_users"] for v in empty["variants"]) == 0


@pytest.fixture
def reweighted(item):
    """50/50 for phase 1 (10 to 5 days ago), then 80/20 (phase 2, from 5 days ago): 200 users
    first assigned in each phase, split exactly by the phase's weights. Phase 1's users come
    back in phase 2."""
    experiment = ActiveExperimentFactory(
        key="reweighted", started_at=days_ago(10), variants=two_variants(0.8, 0.2)
    )
    phase(experiment, 1, days_ago(10), days_ago(5), weights=(0.5, 0.5))
    phase(experiment, 2, days_ago(5), weights=(0.8, 0.2))
    users = UserFactory.create_batch(400)
    for index, user in enumerate(users[:200]):
        variant = "control" if index < 100 else "treatment"
        assign(experiment, user, variant, at=days_ago(9), phase=1)
        serve(user, item, "reweighted", variant, days_ago(9))
        serve(user, item, "reweighted", variant, days_ago(2))
    for index, user in enumerate(users[200:]):
        variant = "control" if index < 160 else "treatment"
        assign(experiment, user, variant, at=days_ago(3), phase=2)
        serve(user, item, "reweighted", variant, days_ago(3))
    return experiment


def test_a_weight_change_is_tested_per_phase_against_its_own_weights(reweighted):
    latest = experiment_results(reweighted)
    first = experiment_results(reweighted, phase=1)

    assert latest["phase"]["number"] == 2
    assert latest["srm"]["users"] == {"control": 160, "treatment": 40}
    assert latest["srm"]["weights"] == {"control": 0.8, "treatment": 0.2}
    assert latest["srm"]["flagged"] is False and latest["srm"]["p_value"] == pytest.approx(1.0)
    assert first["srm"]["users"] == {"control": 100, "treatment": 100}
    assert first["srm"]["flagged"] is False
    # Phase 1's users, back in phase 2, were first exposed before it: not in its inference.
    assert latest["excluded"]["before_phase"] == 200
    assert like_rate(latest, "control")[0] == 160 and like_rate(latest, "treatment")[0] == 40
    assert [p["number"] for p in latest["phases"]] == [1, 2]
    # Pooled over the run against the current weights, the same users would be flagged.
    assert sample_ratio_mismatch([260, 140], [0.8, 0.2])["flagged"] is True


def test_forced_multi_variant_and_early_users_are_excluded_and_counted(item):
    experiment = ActiveExperimentFactory(key="clean", started_at=days_ago(10))
    phase(experiment, 1, days_ago(10), days_ago(4))
    phase(experiment, 2, days_ago(4))
    clean_control, clean_treatment, forced, forced_too, switched, early = UserFactory.create_batch(
        6
    )
    for user, variant in ((clean_control, "control"), (clean_treatment, "treatment")):
        assign(experiment, user, variant, at=days_ago(3), phase=2)
        like(user, serve(user, item, "clean", variant, days_ago(3)), item, days_ago(3))
    for user in (forced, forced_too):
        assign(experiment, user, "treatment", at=days_ago(3), mode="manual")
        like(user, serve(user, item, "clean", "treatment", days_ago(3)), item, days_ago(3))
    assign(experiment, switched, "treatment", at=days_ago(3), phase=2)
    serve(switched, item, "clean", "control", days_ago(3))
    serve(switched, item, "clean", "treatment", days_ago(2))
    assign(experiment, early, "control", at=days_ago(3), phase=2)
    serve(early, item, "clean", "control", days_ago(6))
    serve(early, item, "clean", "control", days_ago(2))

    results = experiment_results(experiment)

    assert results["excluded"] == {"manual": 2, "multiple_variants": 1, "before_phase": 1}
    assert results["manual"] == [
        {"variant": "control", "users": 0},
        {"variant": "treatment", "users": 2},
    ]
    assert like_rate(results, "control") == (1, 1) and like_rate(results, "treatment") == (1, 1)
    # SRM counts automatic assignments of the phase (the forced users are not among them).
    assert results["srm"]["users"] == {"control": 2, "treatment": 2}
    # The report prints the counts.
    out = io.StringIO()
    call_command("experiment_report", "clean", stdout=out)
    assert "manual 2 (control 0, treatment 2), multiple variants 1" in out.getvalue()
    assert "phase 2 of 2" in out.getvalue()


@pytest.fixture
def staff_api(api_client, staff_user, ended):
    api_client.force_authenticate(staff_user)
    return api_client


def test_the_metrics_api_takes_phase_from_and_to(staff_api, ended):
    day = days_ago(33).astimezone(UTC).date()
    url = f"/api/v1/admin/experiments/ended_test/metrics?phase=1&from={day}&to={day}"

    body = staff_api.get(url).json()

    assert body["phase"]["number"] == 1 and body["days"] is None
    assert body["window"]["from"] == f"{day}T00:00:00+00:00"
    assert body["excluded"] == {"manual": 0, "multiple_variants": 0, "before_phase": 0}
    whole = staff_api.get("/api/v1/admin/experiments/ended_test/metrics").json()
    assert whole == json.loads(json.dumps(experiment_results(ended)))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-02-30", "from"),
        ("to=2026-13-01", "to"),
        ("from=yesterday", "from"),
        ("to=2026-01-01%00", "to"),
        ("from=%00", "from"),
        ("from=2026-03-02&to=2026-03-01", "from"),
        ("from=\uff12\uff10\uff12\uff16-01-01", "from"),  # full-width digits
        ("phase=0", "phase"),
        ("phase=two", "phase"),
        ("phase=9", "phase"),
        ("days=0", "days"),
    ],
)
def test_bad_window_parameters_are_a_400_naming_them(staff_api, query, field):
    response = staff_api.get(f"/api/v1/admin/experiments/ended_test/metrics?{query}")

    assert response.status_code == 400
    assert field in api_error_fields(response)
    assert response.json()["code"] == "invalid"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-02-30"], "--from: must be a real date"),
        (["--to", "2026-02-01\x00"], "--to: must be a date"),
        (["--from", "2026-03-02", "--to", "2026-03-01"], "--from must not be after --to"),
        (["--phase", "9"], "phase: no phase 9 (phases: 1)"),
        (["--phase", "0"], "--phase must be a phase number"),
        (["--days", "0"], "--days must be from 1 to 366"),
    ],
)
def test_bad_report_options_are_one_line_errors(ended, args, message):
    with pytest.raises(CommandError) as raised:
        call_command("experiment_report", "ended_test", *args, stdout=io.StringIO())

    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_report_from_to_narrow_like_the_api(ended):
    day = days_ago(33).astimezone(UTC).date()
    out = io.StringIO()
    call_command(
        "experiment_report", "ended_test", "--from", str(day), "--to", str(day), "--json",
        stdout=out,
    )  # fmt: skip
    assert json.loads(out.getvalue())["window"]["from"] == f"{day}T00:00:00+00:00"


def test_admin_results_page_switches_phases_and_shows_exclusions(client, staff_user, reweighted):
    client.force_login(staff_user)
    url = f"/admin/recsys_experiments/experiment/{reweighted.pk}/results/"

    page = client.get(url).content.decode()
    first = client.get(url + "?phase=1")
    bad = client.get(url + "?from=2026-02-30")

    assert 'id="recsys-phases"' in page and 'href="?phase=1"' in page
    assert 'id="recsys-excluded"' in page
    assert first.context["results"]["phase"]["number"] == 1
    assert 'href="?phase=2"' in first.content.decode()
    assert bad.status_code == 200 and "must be a real date" in bad.content.decode()


def test_the_editor_warns_that_an_active_weight_change_starts_a_phase(client, staff_user):
    experiment = ActiveExperimentFactory()
    client.force_login(staff_user)

    page = client.get(f"/admin/recsys_experiments/experiment/{experiment.pk}/change/")

    text = page.content.decode()
    assert 'id="recsys-phase-warning"' in text and "rotate the salt" in text
