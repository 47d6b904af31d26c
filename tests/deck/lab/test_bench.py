"""manage.py bench: a tiny --quick run on the real PostgreSQL, the flags, the verdicts."""

import json
import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from deck.lab import bench
from deck.lab.bench import (
    TARGETS,
    WRK_INSTALL_HINT,
    bench_checks,
    bench_spec,
    http_plan,
)
from recsys_experiments.lib.errors import InvalidInput
from tests.helpers import running_in_ci

LIVE_TABLES = (
    "accounts_user",
    "media_items",
    "rec_experiments",
    "rec_impressions",
    "rec_outcomes",
    "rec_user_experiment_assignments",
    "knox_authtoken",
)


def live_counts() -> dict:
    with connection.cursor() as cursor:
        counts = {}
        for table in LIVE_TABLES:
            cursor.execute(f"select count(*) from {table}")
            counts[table] = cursor.fetchone()[0]
        return counts


def database_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("select exists (select 1 from pg_database where datname = %s)", [name])
        return cursor.fetchone()[0]


def test_a_quick_run_writes_bench_json_and_leaves_the_live_database_alone(db, tmp_path, capsys):
    before = live_counts()

    call_command("bench", "--quick", "--out", str(tmp_path))

    report = json.loads((tmp_path / "bench.json").read_text())
    markdown = (tmp_path / "bench.md").read_text()
    assert set(report) >= {
        "version",
        "created_at",
        "spec",
        "machine",
        "http",
        "pairs",
        "sweeps",
        "checks",
        "scratch_database",
    }
    # Machine and settings are recorded; the bench's sessions ran with synchronous_commit on.
    machine = report["machine"]
    assert machine["cores"] == os.cpu_count()
    assert machine["database"]["synchronous_commit"] == "on"
    assert machine["database"]["jit"] in {"on", "off"}
    assert machine["database"]["postgresql"].startswith("15")
    # Served as make run serves: the shipped gunicorn sizing for this machine.
    assert machine["gunicorn"] == {
        "workers": os.cpu_count() + 1,
        "threads": 4,
        "worker_class": "gthread",
        "debug": False,
    }
    # The scratch database is gone and the live tables did not change.
    assert not database_exists(report["scratch_database"])
    assert live_counts() == before

    pairs = report["pairs"]
    assert list(pairs["deck"]["clients"]) == ["1", "2"]
    for name in ("deck", "outcomes"):
        for row in pairs[name]["clients"].values():
            assert row["sql"]["tps"] > 0
            assert row["sql"]["failed"] == 0
            assert row["sql"]["p50_ms"] <= row["sql"]["p99_ms"]
    for row in pairs["assignment"]["clients"].values():
        assert row["ratio"] == round(row["first"]["p50_ms"] / row["sticky"]["p50_ms"], 3)
        assert not row["fresh_exhausted"]
    sweeps = report["sweeps"]
    assert [row["titles"] for row in sweeps["catalogue"]] == [60, 120]
    assert [row["experiments"] for row in sweeps["experiments"]] == [2, 3]
    assert [row["history_rows"] for row in sweeps["history"]] == [300, 600]
    assert [row["window_rows"] for row in sweeps["window"]] == [150, 300]
    # Only the generated rows: 150 then 300 impressions inside the window.
    assert [row["window_impressions"] for row in sweeps["window"]] == [150, 300]
    assert sweeps["heavy_user"]["outcomes"] == 200
    assert [check["key"] for check in report["checks"]] == [key for key, *_ in TARGETS]

    if report["http"]["available"]:
        for name in ("deck", "outcomes"):
            rows = pairs[name]["clients"].values()
            for row in rows:
                assert row["http"]["errors"] == 0
                assert row["http"]["requests"] > 0
                assert row["ratio"] == round(row["http"]["tps"] / row["sql"]["tps"], 3)
            best = max(r["http"]["tps"] for r in rows) / max(r["sql"]["tps"] for r in rows)
            assert pairs[name]["peak_ratio"] == round(best, 3)
        assert pairs["deck"]["paced"]["errors"] == 0
        assert all(check["pass"] is not None for check in report["checks"])
    else:
        assert report["http"]["reason"] == WRK_INSTALL_HINT
        assert not running_in_ci(), "CI installs wrk (.ci/run)"
    # Ratios first, absolute numbers after.
    assert markdown.index("### Ratios") < markdown.index("### HTTP vs SQL")
    assert "synchronous_commit=on (the cluster's own setting:" in markdown


def test_without_wrk_only_the_http_half_is_skipped_with_the_install_line(monkeypatch):
    monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    plan = http_plan(bench_spec(quick=True))
    assert plan == {"available": False, "reason": WRK_INSTALL_HINT}
    assert "apt-get install -y wrk" in plan["reason"]
    assert http_plan(bench_spec(quick=True, no_http=True))["reason"] == "--no-http"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"duration": "0"}, "--duration: must be a whole number from 1 to 600, got '0'"),
        ({"duration": "5s"}, "--duration: must be a whole number from 1 to 600, got '5s'"),
        ({"duration": "1\x00"}, "--duration: must be a whole number"),
        ({"clients": "4,2,1"}, "--clients: must be 1 to 6 increasing comma-separated numbers"),
        ({"clients": "1,,2"}, "--clients: must be 1 to 6 comma-separated whole numbers"),
        ({"clients": "0"}, "--clients: must be 1 to 6 comma-separated whole numbers from 1"),
        ({"titles": "9" * 40}, "--titles: must be 1 to 6 comma-separated whole numbers"),
        ({"history": "1,2,3,4,5,6,7"}, "--history: must be 1 to 6 increasing"),
        ({"users": "-3"}, "--users: must be a whole number from 1 to 10000, got '-3'"),
        ({"synchronous_commit": "maybe"}, "--synchronous-commit: must be on or off"),
        ({"out": "var/\x00bench"}, "--out: must be a directory path"),
    ],
)
def test_bad_flags_are_one_readable_line(flags, message):
    with pytest.raises(InvalidInput) as raised:
        bench_spec(**flags)
    assert message in raised.value.message
    assert "\n" not in raised.value.message


def test_bad_flags_fail_the_command_before_touching_any_database():
    with pytest.raises(CommandError, match=r"^--workers: must be a whole number from 1 to 64"):
        call_command("bench", "--workers", "100")


def test_the_shipped_gunicorn_sizing_unless_flags_say_otherwise(monkeypatch):
    spec = bench_spec()
    assert (spec.workers, spec.threads) == (os.cpu_count() + 1, 4)
    assert (bench_spec(workers="3").workers, bench_spec(threads="1").threads) == (3, 1)
    monkeypatch.setenv("GUNICORN_THREADS", "0")
    with pytest.raises(InvalidInput) as raised:
        bench_spec()
    assert raised.value.message == "--workers: GUNICORN_THREADS must be a positive integer, not '0'"


def test_a_bad_flag_exits_non_zero_with_one_line():
    done = subprocess.run(
        [sys.executable, "manage.py", "bench", "--duration", "abc", "--window", "30,20"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "CommandError: --duration: must be a whole number from 1 to 600, got 'abc'; "
        "--window: must be 1 to 6 increasing comma-separated numbers, got '30,20'"
    ]


def test_quick_sizes_yield_to_given_flags():
    spec = bench_spec(quick=True, titles="100,200,300", synchronous_commit="off")
    assert spec.titles == (100, 200, 300)
    assert spec.duration == 1
    assert spec.synchronous_commit is False
    assert bench_spec().clients == (1, 2, 4)
    assert bench_spec().synchronous_commit is True


def report_with(**measured) -> dict:
    """A report whose numbers are given by the test (sweeps of two points)."""
    return {
        "pairs": {
            "deck": {"peak_ratio": measured["deck"], "paced": {"p99_ms": 40.0}},
            "outcomes": {"peak_ratio": 0.5},
            "assignment": {"clients": {"1": {"ratio": 2.0}, "2": {"ratio": 9.0}}},
        },
        "sweeps": {
            "catalogue": [{"p50_ms": 9.0}, {"p50_ms": measured["catalogue"]}],
            "experiments": [{"p50_ms": 10.0}, {"p50_ms": 12.1}],
            "heavy_user": {"ratio": 1.2},
            "history": [
                {"results_ms": 100.0, "variant_view_ms": 100.0, "health_ms": 100.0},
                {"results_ms": 119.0, "variant_view_ms": 121.0, "health_ms": 200.0},
            ],
            "window": [{"results_ms": 1.0, "variant_view_ms": 1.0}, measured["window"]],
        },
    }


def test_checks_judge_each_target_at_its_boundary():
    report = report_with(
        deck=0.6, catalogue=15.0, window={"results_ms": 300.5, "variant_view_ms": 500.0}
    )
    verdicts = {check["key"]: (check["measured"], check["pass"]) for check in bench_checks(report)}
    assert verdicts == {
        "deck_http_sql_ratio": (0.6, True),
        "deck_paced_p99_ms": (40.0, True),
        "deck_largest_catalogue_ms": (15.0, True),
        "deck_experiments_growth": (1.21, False),
        "deck_heavy_user_ratio": (1.2, True),
        # Judged at the fewest clients, where contention does not blur it.
        "first_vs_sticky_ratio": (2.0, True),
        "outcomes_http_sql_ratio": (0.5, True),
        "results_history_growth": (1.19, True),
        "results_large_window_ms": (300.5, False),
        "variant_view_history_growth": (1.21, False),
        "variant_view_large_window_ms": (500.0, True),
        "health_ms": (200.0, True),
        "health_history_growth": (2.0, False),
    }


def test_checks_without_the_http_half_say_not_measured():
    report = report_with(deck=None, catalogue=20.0, window={"results_ms": 1, "variant_view_ms": 1})
    report["pairs"]["deck"] = {}
    report["pairs"]["outcomes"] = {}
    checks = {check["key"]: check for check in bench_checks(report)}
    assert checks["deck_http_sql_ratio"]["pass"] is None
    assert checks["outcomes_http_sql_ratio"]["pass"] is None
    assert checks["deck_largest_catalogue_ms"]["pass"] is False
