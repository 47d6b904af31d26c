"""`manage.py experiments ...`: list, show, create, activate, end, duplicate, rotate-salt."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.core.management import call_command
from django.db import connection

from recsys_experiments.models import (
    Assignment,
    AssignmentMode,
    AuditAction,
    AuditEntry,
    Experiment,
    ExperimentStatus,
)
from tests.factories.experiments import ActiveExperimentFactory, ExperimentFactory
from tests.factories.users import UserFactory
from tests.helpers import REPRESENTATION_FIELDS, assign, command_fails, command_output

PROJECT_ROOT = Path(__file__).resolve().parents[3]
TWO_VARIANTS = ["--variant", "control=0.5", "--variant", "treatment=0.5"]
DEEP_JSON = "[" * 100_000 + "]" * 100_000


# --- list and show ---------------------------------------------------------------------------


def test_list_says_so_when_there_are_no_experiments(db):
    assert run("list").strip() == "no experiments"


def test_list_shows_each_experiment_with_status_and_split(db):
    ExperimentFactory(key="ranking_v2")
    ActiveExperimentFactory(
        key="ranking_v3",
        variants=[
            {"name": "control", "weight": 0.25, "config": {}},
            {"name": "treatment", "weight": 0.75, "config": {}},
        ],
    )

    lines = run("list").splitlines()

    assert lines[0].split()[:2] == ["KEY", "STATUS"]
    assert lines[1].split()[:2] == ["ranking_v2", "draft"]
    assert lines[2].split()[:2] == ["ranking_v3", "active"]
    assert "control 25% · treatment 75%" in lines[2]


def test_list_json_parses_with_representation_and_enrolled_users(db, user):
    ExperimentFactory(key="a_draft")
    ActiveExperimentFactory(key="b_active")
    assign("b_active", user)

    rows = json.loads(run("list", "--json"))

    assert [row["key"] for row in rows] == ["a_draft", "b_active"]
    assert set(rows[0]) == REPRESENTATION_FIELDS | {"enrolled_users"}
    assert [row["enrolled_users"] for row in rows] == [0, 1]


def test_list_filters_by_status(db):
    ExperimentFactory(key="a_draft")
    ActiveExperimentFactory(key="b_active")

    rows = json.loads(run("list", "--status", "active", "--json"))

    assert [row["key"] for row in rows] == ["b_active"]


def test_show_prints_every_field(db):
    ExperimentFactory(key="ranking_v2", salt="the-salt", description="New ranking")

    output = run("show", "ranking_v2")

    assert "key: ranking_v2" in output
    assert "status: draft" in output
    assert "salt: the-salt" in output
    assert "description: New ranking" in output
    assert "  - control: weight 0.5, config {}" in output
    assert "  - treatment: weight 0.5, config {}" in output


def test_show_json_is_the_representation(db):
    experiment = ExperimentFactory(key="ranking_v2", salt="the-salt")

    data = json.loads(run("show", "ranking_v2", "--json"))

    assert set(data) == REPRESENTATION_FIELDS
    assert data["key"] == "ranking_v2"
    assert data["salt"] == "the-salt"
    assert data["variants"] == experiment.variants
    assert data["started_at"] is None


def test_show_an_unknown_experiment_is_a_command_error(db):
    assert fails("show", "nope") == 'no experiment with key "nope"'


# --- create ----------------------------------------------------------------------------------


def test_create_with_variant_options_makes_a_draft(db):
    output = run("create", "--key", "ranking_v2", "--description", "New ranking", *TWO_VARIANTS)

    assert output.strip() == "created draft ranking_v2"
    experiment = Experiment.objects.get(key="ranking_v2")
    assert experiment.status == ExperimentStatus.DRAFT
    assert experiment.description == "New ranking"
    assert experiment.variants == [
        {"name": "control", "weight": 0.5, "config": {}},
        {"name": "treatment", "weight": 0.5, "config": {}},
    ]
    assert experiment.salt
    assert experiment.created_by is None
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.source) == (AuditAction.CREATE, None, "command")


def test_create_with_variants_json_prints_the_representation(db):
    variants = [
        {"name": "control", "weight": 0.3, "config": {}},
        {"name": "treatment", "weight": 0.7, "config": {"cf_weight": 0.6}},
    ]

    data = json.loads(
        run("create", "--key", "ranking_v2", "--variants", json.dumps(variants), "--json")
    )

    assert set(data) == REPRESENTATION_FIELDS
    assert data["key"] == "ranking_v2"
    assert data["status"] == "draft"
    assert data["variants"] == variants
    assert Experiment.objects.get(key="ranking_v2").variants == variants


def test_create_takes_config_salt_traffic_namespace_and_targeting(db):
    data = json.loads(
        run(
            "create",
            "--key",
            "ranking_v2",
            "--variant",
            'control=0.5:{"diversity_cap": 3}',
            "--variant",
            "treatment=0.5",
            "--salt",
            "my-salt",
            "--traffic",
            "0.25",
            "--namespace",
            "home:0:0.5",
            "--platform",
            "android",
            "--min-app-version",
            "1.2",
            "--json",
        )
    )

    assert data["variants"][0] == {"name": "control", "weight": 0.5, "config": {"diversity_cap": 3}}
    assert data["salt"] == "my-salt"
    assert data["traffic"] == 0.25
    assert data["namespace"] == {"name": "home", "start": 0.0, "end": 0.5}
    assert data["targeting"] == {"platform": "android", "min_app_version": "1.2"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--key", "Bad Key!", *TWO_VARIANTS], "key: must be"),
        (["--key", "ranking_v2", "--variant", "control=1"], "variants: must be a list"),
        (
            ["--key", "ranking_v2", "--variant", "control=0", "--variant", "b=0.4"],
            "variants[0].weight: must be a number greater than 0",
        ),
        (["--key", "ranking_v2", "--variant", "control=nan", "--variant", "b=1"], "weight"),
        (["--key", "ranking_v2", "--variant", "control", "--variant", "b=1"], "--variant"),
        (["--key", "ranking_v2", "--variants", "[not json"], "--variants: not valid JSON"),
        (
            ["--key", "ranking_v2", "--variants", "[]", "--variant", "control=1"],
            "either --variants",
        ),
        (["--key", "ranking_v2", *TWO_VARIANTS, "--namespace", "home:0.5"], "--namespace"),
        (["--key", "ranking_v2", *TWO_VARIANTS, "--traffic", "2"], "traffic: must be"),
        # hostile input: still one line naming the field
        (["--key", "ranking_v2\n", *TWO_VARIANTS], "key: must be"),
        (["--key", "ranking\x00v2", *TWO_VARIANTS], "key: contains a NUL"),
        (
            ["--key", "ranking_v2", "--description", "x" * 1_000_000, *TWO_VARIANTS],
            "description: must be at most 2000 characters",
        ),
        (
            ["--key", "ranking_v2", "--description", "a\nb\x00", *TWO_VARIANTS],
            "description: contains a NUL",
        ),
        (["--key", "ranking_v2", "--variants", DEEP_JSON], "--variants: not valid JSON"),
        (
            ["--key", "ranking_v2", "--variant", f"control=0.5:{DEEP_JSON}", "--variant", "b=0.5"],
            "--variant 'control=0.5:[[[",
        ),
        (["--key", "ranking_v2", *TWO_VARIANTS, "--guardrails", DEEP_JSON], "--guardrails"),
        (
            ["--key", "ranking_v2", "--variant", "con\ntrol=0.5", "--variant", "b=0.5"],
            "variants[0].name: must be",
        ),
        (
            [
                "--key",
                "ranking_v2",
                "--variant",
                'control=0.5:{"x\\u0000": 1}',
                "--variant",
                "b=0.5",
            ],
            "variants[0].config: has a key that contains a NUL",
        ),
        (
            ["--key", "ranking_v2", *TWO_VARIANTS, "--min-app-version", "\u0661.\u0662"],
            "targeting.min_app_version: must be",
        ),
        (["--key", "ranking_v2", *TWO_VARIANTS, "--salt", "s\x00lt"], "salt: contains a NUL"),
        (
            ["--key", "ranking_v2", *TWO_VARIANTS, "--namespace", "ns\x00:0:0.5"],
            "namespace.name: contains a NUL",
        ),
    ],
)
def test_create_with_bad_input_is_a_one_line_command_error_and_creates_nothing(db, args, expected):
    message = fails("create", *args)

    assert expected in message
    assert not Experiment.objects.exists()
    assert not AuditEntry.objects.exists()


def test_create_with_a_taken_key_is_a_command_error(db):
    ExperimentFactory(key="ranking_v2")

    message = fails("create", "--key", "ranking_v2", *TWO_VARIANTS)

    assert message == 'key: "ranking_v2" is already taken'
    assert Experiment.objects.count() == 1


# --- lifecycle -------------------------------------------------------------------------------


def test_activate_starts_a_draft(db):
    ExperimentFactory(key="ranking_v2")

    output = run("activate", "ranking_v2")

    assert output.strip() == "activated ranking_v2"
    experiment = Experiment.objects.get(key="ranking_v2")
    assert experiment.status == ExperimentStatus.ACTIVE
    assert experiment.started_at is not None
    assert AuditEntry.objects.get().action == AuditAction.ACTIVATE


def test_activate_json_prints_the_active_representation(db):
    ExperimentFactory(key="ranking_v2")

    data = json.loads(run("activate", "ranking_v2", "--json"))

    assert data["status"] == "active"
    assert data["started_at"] is not None


# The lifecycle rules are tested where they live (lib/experiment_rules.py, the services);
# here, that each refusal is one CommandError line giving the reason and changing nothing.
@pytest.mark.parametrize(
    ("status", "args", "message"),
    [
        ("active", ["activate"], 'cannot activate experiment "ranking_v2": it is active'),
        (
            "ended",
            ["activate"],
            'cannot activate experiment "ranking_v2": it is ended (duplicate it to run it again)',
        ),
        ("draft", ["end", "--yes"], 'cannot end experiment "ranking_v2": it is draft'),
        ("ended", ["rotate-salt", "--yes"], 'experiment "ranking_v2" has ended; its salt is final'),
    ],
)
def test_a_refused_lifecycle_step_is_a_command_error_changing_nothing(db, status, args, message):
    ExperimentFactory(key="ranking_v2", status=status, salt="final")

    assert fails(args[0], "ranking_v2", *args[1:]) == message
    after = Experiment.objects.get()
    assert (after.status, after.salt) == (status, "final")
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("action", ["activate", "end", "duplicate", "rotate-salt"])
def test_an_unknown_experiment_is_a_command_error(db, action):
    assert fails(action, "nope", "--yes" if action in {"end", "rotate-salt"} else "--json") == (
        'no experiment with key "nope"'
    )


def test_end_without_yes_refuses_and_changes_nothing(db):
    ActiveExperimentFactory(key="ranking_v2")

    message = fails("end", "ranking_v2")

    assert "--yes" in message
    assert "ranking_v2" in message
    experiment = Experiment.objects.get(key="ranking_v2")
    assert experiment.status == ExperimentStatus.ACTIVE
    assert experiment.ended_at is None
    assert not AuditEntry.objects.exists()


def test_end_with_yes_ends_the_experiment(db):
    ActiveExperimentFactory(key="ranking_v2")

    output = run("end", "ranking_v2", "--yes")

    assert output.strip() == "ended ranking_v2"
    experiment = Experiment.objects.get(key="ranking_v2")
    assert experiment.status == ExperimentStatus.ENDED
    assert experiment.ended_at is not None
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.source) == (AuditAction.END, None, "command")


def test_duplicate_makes_a_draft_copy_with_a_new_salt(db):
    original = ExperimentFactory(key="ranking_v2", status=ExperimentStatus.ENDED)

    output = run("duplicate", "ranking_v2")

    assert output.strip() == "duplicated ranking_v2 as draft ranking_v2_copy"
    copy = Experiment.objects.get(key="ranking_v2_copy")
    assert copy.status == ExperimentStatus.DRAFT
    assert copy.variants == original.variants
    assert copy.salt != original.salt
    assert AuditEntry.objects.get().action == AuditAction.DUPLICATE


def test_duplicate_with_new_key_json(db):
    ExperimentFactory(key="ranking_v2")

    data = json.loads(run("duplicate", "ranking_v2", "--new-key", "ranking_v3", "--json"))

    assert data["key"] == "ranking_v3"
    assert data["status"] == "draft"
    assert Experiment.objects.filter(key="ranking_v3").exists()


def test_duplicate_with_a_bad_new_key_is_a_command_error(db):
    ExperimentFactory(key="ranking_v2")

    assert fails("duplicate", "ranking_v2", "--new-key", "Bad Key!").startswith("key: ")
    assert Experiment.objects.count() == 1


# --- rotate-salt -----------------------------------------------------------------------------


@pytest.fixture
def experiment_with_assignments(db):
    experiment = ActiveExperimentFactory(key="ranking_v2", salt="old-salt")
    for auto_user in UserFactory.create_batch(2):
        assign("ranking_v2", auto_user)
    forced = UserFactory()
    call_command(
        "assignments", "set", "ranking_v2", forced.username, "treatment", stdout=io.StringIO()
    )
    return experiment, forced


def test_rotate_salt_without_yes_refuses_and_says_what_would_move(experiment_with_assignments):
    message = fails("rotate-salt", "ranking_v2")

    assert "2 automatic assignments" in message
    assert "--yes" in message
    assert Experiment.objects.get(key="ranking_v2").salt == "old-salt"
    assert Assignment.objects.count() == 3
    assert not AuditEntry.objects.filter(action=AuditAction.ROTATE_SALT).exists()


def test_rotate_salt_with_yes_rotates_and_keeps_manual_assignments(experiment_with_assignments):
    _, forced = experiment_with_assignments

    output = run("rotate-salt", "ranking_v2", "--yes")

    assert output.strip() == "rotated the salt of ranking_v2: 2 automatic assignments removed"
    assert Experiment.objects.get(key="ranking_v2").salt != "old-salt"
    assert list(Assignment.objects.values_list("user_id", "assignment_mode")) == [
        (forced.pk, AssignmentMode.MANUAL)
    ]
    entry = AuditEntry.objects.get(action=AuditAction.ROTATE_SALT)
    assert (entry.actor, entry.source) == (None, "command")


def test_rotate_salt_json_reports_the_new_salt_and_deleted_count(experiment_with_assignments):
    data = json.loads(run("rotate-salt", "ranking_v2", "--yes", "--json"))

    assert data["auto_assignments_deleted"] == 2
    assert data["experiment"]["salt"] == Experiment.objects.get(key="ranking_v2").salt
    assert data["experiment"]["salt"] != "old-salt"


# --- real process: exit code and stderr ------------------------------------------------------


def child_database_url() -> str:
    """DATABASE_URL of the test database, for a child process (committed data only)."""
    settings = connection.settings_dict
    options = settings.get("OPTIONS", {})
    host = str(settings.get("HOST") or options.get("host") or "")
    port = str(settings.get("PORT") or options.get("port") or "")
    auth = quote(settings.get("USER") or "", safe="")
    if settings.get("PASSWORD"):
        auth += ":" + quote(settings["PASSWORD"], safe="")
    name = quote(settings["NAME"], safe="")
    if host.startswith("/"):
        query = urlencode({"host": host, **({"port": port} if port else {})})
        return f"postgres://{auth}@/{name}?{query}"
    return f"postgres://{auth}@{host}{':' + port if port else ''}/{name}"


def manage(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": child_database_url()},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db(transaction=True)
def test_process_exits_1_with_one_command_error_line_for_an_unknown_experiment():
    result = manage("experiments", "show", "nope")

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "CommandError" in lines[0]
    assert 'no experiment with key "nope"' in lines[0]
    assert result.stdout == ""


@pytest.mark.django_db(transaction=True)
def test_process_exits_0_and_prints_json_for_a_committed_experiment():
    ExperimentFactory(key="ranking_v2", salt="committed-salt")

    result = manage("experiments", "show", "ranking_v2", "--json")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["key"], data["salt"]) == ("ranking_v2", "committed-salt")


def run(*args) -> str:
    return command_output("experiments", *args)


def fails(*args) -> str:
    return command_fails("experiments", *args)


@pytest.mark.parametrize("key", ["a\x00b", "ranking_v2\n", "x" * 100_000])
@pytest.mark.parametrize("action", ["show", "activate", "duplicate"])
def test_a_key_no_experiment_can_have_is_a_one_line_not_found(db, action, key):
    ExperimentFactory(key="ranking_v2")

    message = fails(action, key)

    assert message.startswith("no experiment with key") and len(message) < 200
    assert Experiment.objects.count() == 1
