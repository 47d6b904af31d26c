"""`manage.py bench`: the hot paths over HTTP and as bare SQL, and the scale sweeps of issue 17,
in a scratch database it creates and drops (docs/performance.md).

    spec = bench_spec(duration="5", titles="600,20000,100000", ...)   # InvalidInput on bad flags
    report = bench_run(spec, log=print)                                  # the bench.json dict
    paths = bench_write(report, spec.out)                                # bench.json, bench.md

Each pair runs the same work twice at each client count: through the public API with `wrk`
against gunicorn (started here on a free 127.0.0.1 port, pointing at the scratch database,
with the shipped config/gunicorn.conf.py, DEBUG off and the throttles off), and as the SQL
ceiling with pgbench (custom scripts, random user ids, in a transaction under the same role
and app.user_id the API sets: `set_config('role', 'recsys_authenticated', true)`). The sweeps
time the deck function (pgbench, one client) and the analytics reads (in process, as the
service role) while the scratch data grows. Data is generated set-based (generate_series).

Bench users are addressed by number: user n is `md5('bench-user-' || n)::uuid`, so pgbench
scripts need no lookup table. Nothing touches the live database: everything happens inside
`scratch_database()`.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import re
import runpy
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection, transaction

from deck.lab.scratch import scratch_database
from recsys_experiments.db_roles import END_USER_ROLE, SERVICE_ROLE, acting_as
from recsys_experiments.lib.errors import DomainError, InvalidInput
from recsys_experiments.models import Experiment
from recsys_experiments.services.experiments import (
    experiment_activate,
    experiment_create,
    experiment_end,
)
from telemetry.results.analysis import experiment_results
from telemetry.rollups import rollup_through, utc_today
from telemetry.selectors import telemetry_health

PGBENCH_CANDIDATES = ("/usr/lib/postgresql/15/bin/pgbench",)
WRK_INSTALL_HINT = "wrk is missing: install it with `sudo apt-get install -y wrk` (or `make bench`)"
RESULTS_EXPERIMENT = "bench_exp_01"
DECK_LIMIT = 20
OUTCOME_BATCH = 20
RESULTS_DAYS = 7
# Fresh users made per client and second of a first-assignment run (more than it can assign).
FIRST_PER_CLIENT_SECOND = 3000
MAX_DURATION = 600
MAX_SIZE = 50_000_000

# The target table: (check key, path, target text, comparator, threshold).
TARGETS = [
    ("deck_http_sql_ratio", "deck over HTTP vs SQL (peak req/s ratio)", ">= 0.6", ">=", 0.6),
    ("deck_paced_p99_ms", "deck over HTTP, p99 at about half of peak (ms)", "< 50", "<", 50.0),
    ("deck_largest_catalogue_ms", "deck median at the largest catalogue (ms)", "<= 15", "<=", 15.0),
    ("deck_experiments_growth", "deck, most / fewest active experiments", "<= 1.2", "<=", 1.2),
    ("deck_heavy_user_ratio", "deck, heavy-history user / light user", "<= 1.2", "<=", 1.2),
    ("first_vs_sticky_ratio", "first assignment / sticky lookup (median)", "<= 2", "<=", 2.0),
    ("outcomes_http_sql_ratio", "outcomes POST of 20 vs SQL insert (peak)", ">= 0.5", ">=", 0.5),
    ("results_history_growth", "results, small window, history growth", "<= 1.2", "<=", 1.2),
    ("results_large_window_ms", "results, largest window (ms)", "<= 300", "<=", 300.0),
    ("variant_view_history_growth", "variant daily view, history growth", "<= 1.2", "<=", 1.2),
    (
        "variant_view_large_window_ms",
        "variant daily view, largest window (ms)",
        "<= 500",
        "<=",
        500.0,
    ),
    ("health_ms", "telemetry_health at the largest history (ms)", "<= 200", "<=", 200.0),
    ("health_history_growth", "telemetry_health, history growth", "<= 1.2", "<=", 1.2),
]


class BenchError(DomainError):
    """The bench cannot run (a missing tool, a server that does not start): one line."""


@dataclass(frozen=True)
class BenchSpec:
    duration: int = 5
    clients: tuple[int, ...] = (1, 2, 4)
    titles: tuple[int, ...] = (600, 20_000, 100_000)
    experiments: tuple[int, ...] = (2, 10, 30)
    history: tuple[int, ...] = (100_000, 1_000_000)
    window: tuple[int, ...] = (9_000, 1_000_000)
    heavy_outcomes: int = 30_000
    users: int = 200
    # None: as the shipped config/gunicorn.conf.py sizes them for this machine.
    workers: int | None = None
    threads: int | None = None
    synchronous_commit: bool = True
    http: bool = True
    # Timed calls per analytics reading (median): at tens of ms, 3 moved the growth ratios
    # by ±25 % from run to run on this machine.
    repeats: int = 7
    out: str = "var/bench"
    quick: bool = False
    sizes_note: str = field(default="", compare=False)


QUICK = {
    "duration": 1,
    "clients": (1, 2),
    "titles": (60, 120),
    "experiments": (2, 3),
    "history": (300, 600),
    "window": (150, 300),
    "heavy_outcomes": 200,
    "users": 10,
    "repeats": 1,
}


def shipped_gunicorn_sizing() -> dict[str, int]:
    """Workers and threads as config/gunicorn.conf.py sizes them here (cores, and the
    GUNICORN_WORKERS / GUNICORN_THREADS overrides): the bench serves as `make run` does."""
    conf = runpy.run_path(str(Path(settings.BASE_DIR) / "config" / "gunicorn.conf.py"))
    return {"workers": conf["workers"], "threads": conf["threads"]}


def _int(errors: dict, name: str, raw, low: int, high: int) -> int | None:
    text = str(raw).strip()
    if not re.fullmatch(r"[0-9]{1,9}", text) or not low <= int(text) <= high:
        errors[f"--{name}"] = [f"must be a whole number from {low} to {high}, got {shown(raw)}"]
        return None
    return int(text)


def _ints(errors: dict, name: str, raw, low: int, high: int, count: tuple[int, int]):
    parts = str(raw).split(",")
    values = []
    for part in parts:
        value = _int({}, name, part, low, high)
        if value is None:
            errors[f"--{name}"] = [
                f"must be {count[0]} to {count[1]} comma-separated whole numbers from {low} "
                f"to {high}, got {shown(raw)}"
            ]
            return None
        values.append(value)
    if not count[0] <= len(values) <= count[1] or values != sorted(set(values)):
        errors[f"--{name}"] = [
            f"must be {count[0]} to {count[1]} increasing comma-separated numbers, got {shown(raw)}"
        ]
        return None
    return tuple(values)


def shown(raw) -> str:
    text = repr(str(raw))
    return text if len(text) <= 40 else text[:37] + "...'"


def bench_spec(
    *,
    duration=None,
    clients=None,
    titles=None,
    experiments=None,
    history=None,
    window=None,
    heavy_outcomes=None,
    users=None,
    workers=None,
    threads=None,
    synchronous_commit="on",
    no_http=False,
    out=None,
    quick=False,
) -> BenchSpec:
    """The spec from the command's text flags; InvalidInput names every bad flag. `quick`
    fills the flags not given with tiny sizes (for tests); given flags still win."""
    base = {**asdict(BenchSpec()), **(QUICK if quick else {})}
    errors: dict[str, list[str]] = {}
    values = {}
    checks = {
        "duration": (duration, lambda r: _int(errors, "duration", r, 1, MAX_DURATION)),
        "clients": (clients, lambda r: _ints(errors, "clients", r, 1, 64, (1, 6))),
        "titles": (titles, lambda r: _ints(errors, "titles", r, 10, MAX_SIZE, (1, 6))),
        "experiments": (experiments, lambda r: _ints(errors, "experiments", r, 1, 200, (1, 6))),
        "history": (history, lambda r: _ints(errors, "history", r, 0, MAX_SIZE, (1, 6))),
        "window": (window, lambda r: _ints(errors, "window", r, 10, MAX_SIZE, (1, 6))),
        "heavy_outcomes": (
            heavy_outcomes,
            lambda r: _int(errors, "heavy-outcomes", r, 1, MAX_SIZE),
        ),
        "users": (users, lambda r: _int(errors, "users", r, 1, 10_000)),
        "workers": (workers, lambda r: _int(errors, "workers", r, 1, 64)),
        "threads": (threads, lambda r: _int(errors, "threads", r, 1, 64)),
    }
    for name, (raw, check) in checks.items():
        values[name] = base[name] if raw is None else check(raw)
    if values["workers"] is None or values["threads"] is None:
        try:
            shipped = shipped_gunicorn_sizing()
        except ValueError as error:  # a bad GUNICORN_WORKERS / GUNICORN_THREADS
            errors["--workers"] = [str(error)]
        else:
            values["workers"] = values["workers"] or shipped["workers"]
            values["threads"] = values["threads"] or shipped["threads"]
    if synchronous_commit not in ("on", "off"):
        errors["--synchronous-commit"] = [f"must be on or off, got {shown(synchronous_commit)}"]
    if out is not None and ("\x00" in str(out) or not str(out).strip()):
        errors["--out"] = ["must be a directory path"]
    if errors:
        raise InvalidInput(errors)
    return BenchSpec(
        **values,
        synchronous_commit=synchronous_commit == "on",
        http=not no_http,
        repeats=base["repeats"],
        out=str(out) if out is not None else base["out"],
        quick=quick,
    )


# --- tools ---------------------------------------------------------------------------------


def pgbench_path() -> str:
    found = shutil.which("pgbench") or next(
        (path for path in PGBENCH_CANDIDATES if Path(path).exists()), None
    )
    if not found:
        bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True)
        found = str(bindirs[0]) if bindirs else None
    if not found:
        raise BenchError(
            "pgbench is missing: install the PostgreSQL server package (apt-get install -y "
            "postgresql), which ships it in /usr/lib/postgresql/<version>/bin"
        )
    return found


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _connection_env() -> dict[str, str]:
    """libpq environment for the current (scratch) database."""
    params = connection.settings_dict
    options = params.get("OPTIONS") or {}
    env = {
        "PGDATABASE": params["NAME"],
        "PGUSER": params.get("USER") or "",
        "PGHOST": params.get("HOST") or options.get("host") or "",
        "PGPORT": str(params.get("PORT") or options.get("port") or ""),
        "PGPASSWORD": params.get("PASSWORD") or "",
    }
    return {key: value for key, value in env.items() if value}


def _database_url() -> str:
    """DATABASE_URL of the current (scratch) database, for gunicorn."""
    env = _connection_env()
    auth = quote(env.get("PGUSER", ""), safe="")
    if env.get("PGPASSWORD"):
        auth += ":" + quote(env["PGPASSWORD"], safe="")
    host, port = env.get("PGHOST", ""), env.get("PGPORT", "")
    name = quote(env["PGDATABASE"], safe="")
    if host.startswith("/"):
        query = f"?host={quote(host, safe='/')}" + (f"&port={port}" if port else "")
        return f"postgres://{auth}@/{name}{query}"
    return f"postgres://{auth}@{host}{':' + port if port else ''}/{name}"


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def _r(value, digits=2):
    return None if value is None else round(float(value), digits)


def run_pgbench(script: str, *, clients: int, duration: int, variables: dict, workdir: Path):
    """One pgbench run of `script` (text); tps and latency percentiles from its per-transaction
    log (microseconds)."""
    workdir.mkdir(parents=True, exist_ok=True)
    script_file = Path(tempfile.mkstemp(suffix=".sql", dir=workdir)[1])
    script_file.write_text(script)
    prefix = workdir / f"log{script_file.stem}"
    command = [
        pgbench_path(),
        "-n",
        "-f",
        str(script_file),
        "-c",
        str(clients),
        "-j",
        str(clients),
        "-T",
        str(duration),
        "-l",
        f"--log-prefix={prefix}",
    ]
    for name, value in variables.items():
        command += ["-D", f"{name}={value}"]
    done = subprocess.run(
        command,
        env={**os.environ, **_connection_env()},
        capture_output=True,
        text=True,
        timeout=duration + 120,
        check=False,
    )
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout)
    failed = re.search(r"number of failed transactions: ([0-9]+)", done.stdout)
    if done.returncode != 0 or not tps:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"pgbench failed ({done.returncode}): {last}")
    latencies = []
    for log in workdir.glob(f"{prefix.name}*"):
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                latencies.append(int(parts[2]) / 1000.0)
        log.unlink()
    script_file.unlink()
    return {
        "tps": _r(tps.group(1)),
        "p50_ms": _r(_percentile(latencies, 0.5), 3),
        "p99_ms": _r(_percentile(latencies, 0.99), 3),
        "transactions": len(latencies),
        "failed": int(failed.group(1)) if failed else 0,
    }


WRK_DONE = """
done = function(summary, latency, requests)
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"status_errors": %d, "socket_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""

WRK_COMMON = """
math.randomseed(%(seed)d)
local tokens = {%(tokens)s}
local pace = %(pace)d
local counter = 0
local thread_tag = tostring(math.random(1, 2147483647))
if pace > 0 then
  function delay() return pace end
end
local function uuid()
  return string.format('%%08x-%%04x-4%%03x-8%%03x-%%06x%%06x', math.random(0, 2147483647),
    math.random(0, 65535), math.random(0, 4095), math.random(0, 4095),
    math.random(0, 16777215), math.random(0, 16777215))
end
local function headers()
  return {["Authorization"] = "Token " .. tokens[math.random(1, #tokens)],
          ["Content-Type"] = "application/json"}
end
"""

WRK_DECK = """
request = function()
  return wrk.format("POST", "/api/v1/deck", headers(), '{"limit": %(limit)d}')
end
"""

WRK_OUTCOMES = """
request = function()
  counter = counter + 1
  local request_id = uuid()
  local items = {}
  for i = 1, %(batch)d do
    items[i] = string.format(
      '{"event_id": "b%%s-%%d-%%d", "rec_request_id": "%%s", "media_item_id": %%d, ' ..
      '"outcome_type": "like"}',
      thread_tag, counter, i, request_id, math.random(1, %(titles)d))
  end
  return wrk.format("POST", "/api/v1/outcomes", headers(),
    '{"outcomes": [' .. table.concat(items, ',') .. ']}')
end
"""


def run_wrk(lua: str, *, port: int, clients: int, duration: int, workdir: Path) -> dict:
    script = Path(tempfile.mkstemp(suffix=".lua", dir=workdir)[1])
    script.write_text(lua + WRK_DONE)
    command = [
        wrk_path() or "wrk",
        "-t1",
        f"-c{clients}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    script.unlink()
    found = re.search(r"^BENCH (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not found:
        last = ((done.stderr or done.stdout).strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"wrk failed ({done.returncode}): {last}")
    raw = json.loads(found.group(1))
    seconds = raw["duration_us"] / 1e6 or 1.0
    return {
        "tps": _r(raw["requests"] / seconds),
        "p50_ms": _r(raw["p50_us"] / 1000.0, 3),
        "p99_ms": _r(raw["p99_us"] / 1000.0, 3),
        "requests": raw["requests"],
        "errors": raw["status_errors"] + raw["socket_errors"],
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Gunicorn:
    """gunicorn on a free 127.0.0.1 port, serving the current (scratch) database."""

    def __init__(self, spec: BenchSpec, workdir: Path):
        self.spec = spec
        self.workdir = workdir
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "DEBUG": "false",
            "SECURE_SSL_REDIRECT": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECRET_KEY": settings.SECRET_KEY,
        }
        for name in (
            "THROTTLE_DECK",
            "THROTTLE_OUTCOMES",
            "THROTTLE_ASSIGNMENTS",
            "THROTTLE_EXPOSURES",
            "THROTTLE_CONVERSIONS",
        ):
            env[name] = "off"
        env.pop("DJANGO_SETTINGS_MODULE", None)
        return env

    def command(self) -> list[str]:
        worker_class = "gthread" if self.spec.threads > 1 else "sync"
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "-c",
            str(Path(settings.BASE_DIR) / "config" / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.spec.workers),
            "--threads",
            str(self.spec.threads),
            "--worker-class",
            worker_class,
        ]

    def __enter__(self) -> Gunicorn:
        log = (self.workdir / "gunicorn.log").open("w")
        self.process = subprocess.Popen(
            self.command(),
            cwd=settings.BASE_DIR,
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/api/health", timeout=2
                ) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.__exit__(None, None, None)
        lines = (self.workdir / "gunicorn.log").read_text().strip().splitlines()
        reason = next(
            (line for line in reversed(lines) if "Error" in line or "error" in line),
            lines[-1] if lines else "no output",
        )
        raise BenchError(f"gunicorn did not start on port {self.port}: {reason.strip()}")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- data (set-based) ----------------------------------------------------------------------


def _execute(sql: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _scalar(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def users_ensure(prefix: str, count: int) -> None:
    """Users `md5(prefix || n)::uuid` for n = 1..count (existing ones are kept)."""
    _execute(
        """
        insert into accounts_user (id, password, is_superuser, username, first_name, last_name,
                                   email, is_staff, is_active, date_joined, is_anonymous_install)
        select md5(%(prefix)s || g)::uuid, '!', false, %(prefix)s || g, '', '', '', false, true,
               now(), false
        from generate_series(1, %(count)s) as g
        on conflict do nothing
        """,
        {"prefix": prefix, "count": count},
    )


def catalogue_grow(titles: int) -> None:
    """media_items 1..titles: spread years (some null), genres, popularity."""
    _execute(
        """
        insert into media_items (id, title, genres, year, popularity, external_id, created_at)
        select g, 'Bench title ' || g,
               array[(array['drama','comedy','action','horror','sci_fi','documentary',
                            'romance','thriller','animation','crime'])[1 + g %% 10],
                     (array['family','mystery','history','music','war'])[1 + g %% 5]],
               case when g %% 17 = 0 then null else 1950 + (g * 37) %% 75 end,
               ((g * 7919) %% 10007) / 100.0, 'bench-' || g, now()
        from generate_series(1, %(titles)s) as g
        on conflict (id) do nothing
        """,
        {"titles": titles},
    )
    _execute("select setval(pg_get_serial_sequence('media_items', 'id'), %s)", [titles])
    _execute("analyze media_items")


def experiments_activate(count: int, log) -> None:
    """Exactly `count` active bench experiments (bench_exp_01..): new ones created and
    activated through the experiment services; extra ones ended."""
    with transaction.atomic(), acting_as(SERVICE_ROLE):
        active = list(
            Experiment.objects.filter(status="active", key__startswith="bench_exp_").order_by("key")
        )
        for experiment in active[count:]:
            experiment_end(experiment=experiment, actor=None, source="command")
        for number in range(len(active) + 1, count + 1):
            key = f"bench_exp_{number:02d}"
            if Experiment.objects.filter(key=key).exists():
                key = f"bench_exp_{number:02d}_{int(time.time() * 1000) % 10**9}"
            experiment = experiment_create(
                data={
                    "key": key,
                    "description": "bench experiment",
                    "variants": [
                        {"name": "control", "weight": 0.5, "config": {}},
                        {"name": "treatment", "weight": 0.5, "config": {"cf_weight": 0.6}},
                    ],
                },
                actor=None,
                source="command",
            )
            experiment_activate(experiment=experiment, actor=None, source="command")
    # History reaches back 90 days: the phases must have started before it.
    _execute(
        "update rec_experiments set started_at = now() - interval '120 days'"
        " where key like 'bench_exp_%%' and status = 'active'"
    )
    _execute(
        "update rec_experiment_phases set started_at = now() - interval '120 days'"
        " where ended_at is null and experiment_id in"
        " (select id from rec_experiments where key like 'bench_exp_%%')"
    )
    log(f"  {count} active experiments")


def assign_pool(users: int) -> None:
    """Sticky assignments for the bench users in every active experiment (the SQL path)."""
    _execute(
        """
        select count(rec_assign_variant(e.key, md5('bench-user-' || g)::uuid))
        from generate_series(1, %s) as g cross join rec_experiments as e
        where e.status = 'active'
        """,
        [users],
    )


class History:
    """Impressions (10 per request, tagged with the results experiment) and outcomes (one per
    3 impressions) of `users` history users, placed before or inside the results window."""

    def __init__(self, users: int):
        self.users = users
        self.next_row = 1
        self.rows = {"history": 0, "window": 0}
        users_ensure("bench-hist-", users)
        _execute(
            """
            insert into rec_user_experiment_assignments
                (variant, assignment_mode, assigned_at, user_id, experiment_id, phase)
            select case when g %% 2 = 0 then 'control' else 'treatment' end, 'auto',
                   now() - interval '100 days', md5('bench-hist-' || g)::uuid, e.id, 1
            from generate_series(1, %(users)s) as g
            cross join rec_experiments as e
            where e.key = %(key)s
            on conflict do nothing
            """,
            {"users": users, "key": RESULTS_EXPERIMENT},
        )

    def rows_now(self) -> dict:
        return {"history_rows": self.rows["history"], "window_rows": self.rows["window"]}

    def add(self, rows: int, *, where: str, titles: int) -> None:
        if rows <= 0:
            return
        # history: 10 to 90 days back; window: the last 6 days (inside RESULTS_DAYS).
        start, span = (
            ("90 days", 80 * 86400) if where == "history" else ("6 days", 6 * 86400 - 3600)
        )
        low, high = self.next_row, self.next_row + rows - 1
        _execute(
            """
            with source as (
                select g, 1 + (g / 10) %% %(users)s as u,
                       md5('bench-req-' || (g / 10))::uuid as request_id,
                       1 + (g * 7919) %% %(titles)s as item,
                       now() - %(start)s::interval
                           + ((g - %(low)s)::float8 / %(rows)s * %(span)s) * interval '1 second'
                           as at
                from generate_series(%(low)s::bigint, %(high)s::bigint) as g
            ),
            served as (
                insert into rec_impressions
                    (user_id, rec_request_id, media_item_id, position, source, request_context,
                     created_at)
                select md5('bench-hist-' || s.u)::uuid, s.request_id, s.item, 1 + s.g %% 10,
                       'popularity',
                       jsonb_build_object(
                           'experiments', jsonb_build_object(
                               %(key)s, case when s.u %% 2 = 0 then 'control' else 'treatment' end),
                           'platform', null, 'app_version', null),
                       s.at
                from source as s
            )
            insert into rec_outcomes
                (event_id, user_id, rec_request_id, media_item_id, outcome_type, value,
                 occurred_at, created_at)
            select 'bench-' || s.g, md5('bench-hist-' || s.u)::uuid, s.request_id, s.item,
                   case when s.g %% 2 = 0 then 'like' else 'dislike' end, null,
                   s.at + interval '1 minute', s.at + interval '1 minute'
            from source as s
            where s.g %% 3 = 0
            """,
            {
                "users": self.users,
                "titles": titles,
                "start": start,
                "span": span,
                "low": low,
                "high": high,
                "rows": rows,
                "key": RESULTS_EXPERIMENT,
            },
        )
        self.next_row = high + 1
        self.rows[where] += rows
        _execute("analyze rec_impressions")
        _execute("analyze rec_outcomes")
        _execute("analyze rec_user_experiment_assignments")


# --- pgbench scripts -----------------------------------------------------------------------

AS_USER = (
    "select set_config('role', '{role}', true), "
    "set_config('app.user_id', md5('{prefix}' || :n)::uuid::text, true);\n"
)

DECK_SQL = (
    "\\set n random(1, :users)\nbegin;\n"
    + AS_USER.format(role=END_USER_ROLE, prefix="bench-user-")
    + f"select media_swipe_deck_v1(md5('bench-user-' || :n)::uuid, {DECK_LIMIT}, null, null);\n"
    "commit;\n"
)


def deck_one_user_sql(user_id: str) -> str:
    """The deck of one given user, every time."""
    return (
        "begin;\n"
        f"select set_config('role', '{END_USER_ROLE}', true),"
        f" set_config('app.user_id', '{user_id}', true);\n"
        f"select media_swipe_deck_v1('{user_id}'::uuid, {DECK_LIMIT}, null, null);\n"
        "commit;\n"
    )


OUTCOMES_SQL = (
    "\\set n random(1, :users)\nbegin;\n"
    + AS_USER.format(role=END_USER_ROLE, prefix="bench-user-")
    + "insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id, outcome_type,"
    " value, occurred_at, created_at)\n"
    "select gen_random_uuid()::text, md5('bench-user-' || :n)::uuid, r.id,"
    " 1 + (g * 7919 + :n) % :titles, 'like', null, now(), now()\n"
    f"from generate_series(1, {OUTCOME_BATCH}) as g\n"
    "cross join (select gen_random_uuid() as id) as r\n"
    # Duplicates are skipped by rec_event_keys' trigger (the table is partitioned: no unique
    # index on (user_id, event_id) for an ON CONFLICT to name), as in outcomes_record.
    "returning event_id;\n"
    "commit;\n"
)

STICKY_SQL = (
    "\\set n random(1, :users)\nbegin;\n"
    + AS_USER.format(role=END_USER_ROLE, prefix="bench-user-")
    + f"select rec_assign_variant('{RESULTS_EXPERIMENT}', md5('bench-user-' || :n)::uuid);\n"
    "commit;\n"
)

# A never-assigned user each time: client c takes fresh users base + c * stride + 1, 2, ...
FIRST_SQL = (
    "\\set i :i + 1\n\\set n :base + :client_id * :stride + :i\nbegin;\n"
    + AS_USER.format(role=END_USER_ROLE, prefix="bench-fresh-")
    + f"select rec_assign_variant('{RESULTS_EXPERIMENT}', md5('bench-fresh-' || :n)::uuid);\n"
    "commit;\n"
)


# --- the run -------------------------------------------------------------------------------


def _median_ms(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        with transaction.atomic(), acting_as(SERVICE_ROLE):
            work()
            transaction.set_rollback(True)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def analytics_time(repeats: int) -> dict:
    """Median ms of experiment_results, the variant daily view and telemetry_health, in
    process as the service role (what the admin pages run)."""
    experiment = Experiment.objects.get(key=RESULTS_EXPERIMENT)

    def view():
        with connection.cursor() as cursor:
            cursor.execute(
                "select * from rec_variant_daily_metrics_v1 where experiment_key = %s"
                " and day >= current_date - %s order by day, variant",
                [RESULTS_EXPERIMENT, RESULTS_DAYS - 1],
            )
            cursor.fetchall()

    # The steady state of a deployment: cron's `manage.py rollup` has rolled every complete
    # day (timed apart: it runs once a day, not per read). Without it the first read rolls
    # the whole history on demand, and _median_ms's rollback would make every read do so.
    started = time.perf_counter()
    with transaction.atomic():
        rollup_through(through=utc_today() - timedelta(days=1))
    rollup_ms = round((time.perf_counter() - started) * 1000, 2)
    # A first untimed pass warms caches the way a live server is warm.
    _median_ms(lambda: experiment_results(experiment, days=RESULTS_DAYS), 1)
    return {
        "rollup_ms": rollup_ms,
        "results_ms": _median_ms(
            lambda: experiment_results(experiment, days=RESULTS_DAYS), repeats
        ),
        "variant_view_ms": _median_ms(view, repeats),
        "health_ms": _median_ms(lambda: telemetry_health(days=RESULTS_DAYS), repeats),
        "window_impressions": _scalar(
            "select count(*) from rec_impressions where created_at >= now() - %s::interval",
            [f"{RESULTS_DAYS} days"],
        ),
        "total_impressions": _scalar("select count(*) from rec_impressions"),
    }


def _tokens(users: int) -> list[str]:
    from recsys_experiments.accounts.models import User
    from recsys_experiments.accounts.services import token_create

    keys = []
    for user in User.objects.filter(pk__in=_ids("bench-user-", users)).order_by("username"):
        keys.append(token_create(user=user)[1])
    return keys


def _ids(prefix: str, count: int) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "select md5(%s || g)::uuid from generate_series(1, %s) as g", [prefix, count]
        )
        return [row[0] for row in cursor.fetchall()]


def http_plan(spec: BenchSpec) -> dict:
    """Whether the HTTP half runs, and why not (wrk missing: how to install it)."""
    if not spec.http:
        return {"available": False, "reason": "--no-http"}
    if not wrk_path():
        return {"available": False, "reason": WRK_INSTALL_HINT}
    return {"available": True, "reason": None}


def bench_run(spec: BenchSpec, log: Callable[[str], None] = lambda line: None) -> dict:
    """Runs the whole bench in a scratch database (dropped afterwards) and returns the
    report (the contents of bench.json)."""
    pgbench_path()
    http = http_plan(spec)
    if spec.http and not http["available"]:
        log(http["reason"] + "; the HTTP half is skipped")
    with connection.cursor() as cursor:
        cursor.execute("select setting from pg_settings where name = 'synchronous_commit'")
        cluster_synchronous_commit = cursor.fetchone()[0]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, scratch_database() as scratch:
        workdir = Path(tmp)
        name = connection.ops.quote_name(scratch.name)
        commit = "on" if spec.synchronous_commit else "off"
        _execute(f"alter database {name} set synchronous_commit = {commit}")
        connection.close()  # new sessions pick up the database setting
        report = {
            "version": 1,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "spec": {
                key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(spec).items()
                if key != "sizes_note"
            },
            "machine": _machine(spec, cluster_synchronous_commit),
            "http": http,
            "pairs": {},
            "sweeps": {},
        }
        log(f"scratch database {scratch.name}; synchronous_commit={commit}")
        log("seeding: users, catalogue, experiments")
        users_ensure("bench-user-", spec.users)
        catalogue_grow(spec.titles[0])
        experiments_activate(spec.experiments[0], log)
        assign_pool(spec.users)
        base = {"users": spec.users, "titles": spec.titles[0]}

        def pgbench(script, clients, **extra):
            return run_pgbench(
                script,
                clients=clients,
                duration=spec.duration,
                variables={**base, **extra},
                workdir=workdir,
            )

        # Pairs: HTTP vs SQL at each client count.
        deck = {"clients": {}}
        outcomes = {"clients": {}}
        assignment = {"clients": {}}
        tokens = _tokens(spec.users) if http["available"] else []
        server = Gunicorn(spec, workdir) if http["available"] else None
        # Never-assigned users for the first-assignment runs: `stride` per client and run.
        stride, fresh_base = spec.duration * FIRST_PER_CLIENT_SECOND, 0
        if server:
            server.__enter__()
        try:

            def pair(sql_script: str, wrk_script: str, clients: int) -> dict:
                row = {"sql": pgbench(sql_script, clients)}
                if server:
                    row["http"] = run_wrk(
                        _lua(wrk_script, tokens, spec, pace=0),
                        port=server.port,
                        clients=clients,
                        duration=spec.duration,
                        workdir=workdir,
                    )
                    row["ratio"] = _ratio(row["http"]["tps"], row["sql"]["tps"])
                return row

            for clients in spec.clients:
                log(f"pairs at {clients} client(s)")
                deck["clients"][str(clients)] = pair(DECK_SQL, WRK_DECK, clients)
                outcomes["clients"][str(clients)] = pair(OUTCOMES_SQL, WRK_OUTCOMES, clients)
                users_ensure("bench-fresh-", fresh_base + clients * stride)
                row = {
                    "sticky": pgbench(STICKY_SQL, clients),
                    "first": pgbench(FIRST_SQL, clients, i=0, base=fresh_base, stride=stride),
                }
                row["fresh_users"] = clients * stride
                # A client that ran past its stride met users assigned already (sticky).
                row["fresh_exhausted"] = row["first"]["transactions"] > clients * stride
                fresh_base += clients * stride
                row["ratio"] = _ratio(row["first"]["p50_ms"], row["sticky"]["p50_ms"])
                assignment["clients"][str(clients)] = row
            if server:
                peak = max(deck["clients"].values(), key=lambda r: r["http"]["tps"])
                clients = max(spec.clients)
                half = max(peak["http"]["tps"] / 2, 1.0)
                pace = max(0, int(1000 * clients / half - (peak["http"]["p50_ms"] or 0)))
                log(f"deck paced at about half of peak ({half:.0f} req/s)")
                paced = run_wrk(
                    _lua(WRK_DECK, tokens, spec, pace=pace),
                    port=server.port,
                    clients=clients,
                    duration=spec.duration,
                    workdir=workdir,
                )
                deck["paced"] = {**paced, "target_tps": _r(half), "delay_ms": pace}
        finally:
            if server:
                server.__exit__(None, None, None)
        for pair in (deck, outcomes):
            ratios = [row["ratio"] for row in pair["clients"].values() if "ratio" in row]
            if ratios:
                best_http = max(row["http"]["tps"] for row in pair["clients"].values())
                best_sql = max(row["sql"]["tps"] for row in pair["clients"].values())
                pair["peak_ratio"] = _ratio(best_http, best_sql)
        report["pairs"] = {"deck": deck, "outcomes": outcomes, "assignment": assignment}

        # Sweeps of the deck function (one client).
        log("sweep: active experiments")
        sweep = []
        for count in spec.experiments:
            experiments_activate(count, log)
            assign_pool(spec.users)
            sweep.append({"experiments": count, **pgbench(DECK_SQL, 1)})
        report["sweeps"]["experiments"] = sweep
        experiments_activate(spec.experiments[0], log)

        log("sweep: catalogue size")
        sweep = []
        for titles in spec.titles:
            catalogue_grow(titles)
            base["titles"] = titles
            sweep.append({"titles": titles, **pgbench(DECK_SQL, 1)})
        report["sweeps"]["catalogue"] = sweep

        log(f"heavy user: {spec.heavy_outcomes} outcomes")
        users_ensure("bench-heavy-", 1)
        _execute(
            """
            insert into rec_outcomes (event_id, user_id, rec_request_id, media_item_id,
                                      outcome_type, value, occurred_at, created_at)
            select 'heavy-' || g, md5('bench-heavy-1')::uuid, md5('heavy-req-' || g / 20)::uuid,
                   1 + (g * 7919) %% %(titles)s,
                   case when g %% 2 = 0 then 'like' else 'dislike' end, null,
                   now() - interval '30 days', now() - interval '30 days'
            from generate_series(1, %(count)s) as g
            """,
            {"titles": base["titles"], "count": spec.heavy_outcomes},
        )
        _execute("analyze rec_outcomes")
        heavy = pgbench(deck_one_user_sql(_ids("bench-heavy-", 1)[0]), 1)
        light = pgbench(deck_one_user_sql(_ids("bench-user-", 1)[0]), 1)
        report["sweeps"]["heavy_user"] = {
            "outcomes": spec.heavy_outcomes,
            "titles": base["titles"],
            "heavy": heavy,
            "light": light,
            "ratio": _ratio(heavy["p50_ms"], light["p50_ms"]),
        }

        log("sweep: history size (small window)")
        # The analytics sweeps measure the generated history alone: the decks and outcomes
        # served above would otherwise all sit inside the window.
        _execute("truncate rec_impressions, rec_outcomes")
        history = History(users=max(50, min(20_000, spec.window[-1] // 50)))
        history.add(spec.window[0], where="window", titles=base["titles"])
        sweep = []
        for rows in spec.history:
            history.add(rows - history.rows["history"], where="history", titles=base["titles"])
            sweep.append({**history.rows_now(), **analytics_time(spec.repeats)})
            log(f"  history {rows}: {sweep[-1]}")
        report["sweeps"]["history"] = sweep

        log("sweep: rows in the window")
        sweep = []
        for rows in spec.window:
            history.add(rows - history.rows["window"], where="window", titles=base["titles"])
            sweep.append({**history.rows_now(), **analytics_time(spec.repeats)})
            log(f"  window {rows}: {sweep[-1]}")
        report["sweeps"]["window"] = sweep
        report["machine"]["database"] = _database_settings()
        report["scratch_database"] = scratch.name
        report["elapsed_s"] = round(time.monotonic() - started, 1)
    report["checks"] = bench_checks(report)
    return report


_LUA_SEEDS = itertools.count(17)


def _lua(body: str, tokens: list[str], spec: BenchSpec, *, pace: int) -> str:
    """A wrk script; each gets its own seed, so event ids never repeat between runs."""
    common = WRK_COMMON % {
        "seed": next(_LUA_SEEDS),
        "tokens": ", ".join(f'"{key}"' for key in tokens),
        "pace": pace,
    }
    return common + body % {"limit": DECK_LIMIT, "batch": OUTCOME_BATCH, "titles": spec.titles[0]}


def _ratio(a, b):
    if a is None or b is None or not b:
        return None
    return round(a / b, 3)


def _machine(spec: BenchSpec, cluster_synchronous_commit: str) -> dict:
    return {
        "cores": os.cpu_count(),
        # Other work on the machine skews everything: recorded at the start.
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cluster_synchronous_commit": cluster_synchronous_commit,
        "synchronous_commit": "on" if spec.synchronous_commit else "off",
        "gunicorn": {
            "workers": spec.workers,
            "threads": spec.threads,
            "worker_class": "gthread" if spec.threads > 1 else "sync",
            "debug": False,
        },
        "wrk": wrk_path(),
        "pgbench": pgbench_path(),
    }


def _database_settings() -> dict:
    """What a new session on the scratch database sees (the bench's sessions)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "select current_setting('server_version'), current_setting('synchronous_commit'),"
            " current_setting('jit'), current_setting('jit_above_cost'),"
            " current_setting('shared_buffers'), current_setting('work_mem')"
        )
        version, commit, jit, jit_cost, buffers, work_mem = cursor.fetchone()
    return {
        "postgresql": version,
        "synchronous_commit": commit,
        "jit": jit,
        "jit_above_cost": jit_cost,
        "shared_buffers": buffers,
        "work_mem": work_mem,
    }


def _growth(sweep: list[dict], key: str):
    if len(sweep) < 2:
        return None
    return _ratio(sweep[-1][key], sweep[0][key])


def bench_checks(report: dict) -> list[dict]:
    """The issue's target table judged on this report: measured value, target, pass (None when
    not measured)."""
    pairs, sweeps = report["pairs"], report["sweeps"]
    deck = pairs.get("deck", {})
    assignment = pairs.get("assignment", {}).get("clients", {})
    first_client = assignment.get(str(min(int(c) for c in assignment))) if assignment else None
    measured = {
        "deck_http_sql_ratio": deck.get("peak_ratio"),
        "deck_paced_p99_ms": deck.get("paced", {}).get("p99_ms"),
        "deck_largest_catalogue_ms": (sweeps.get("catalogue") or [{}])[-1].get("p50_ms"),
        "deck_experiments_growth": _growth(sweeps.get("experiments", []), "p50_ms"),
        "deck_heavy_user_ratio": sweeps.get("heavy_user", {}).get("ratio"),
        "first_vs_sticky_ratio": first_client["ratio"] if first_client else None,
        "outcomes_http_sql_ratio": pairs.get("outcomes", {}).get("peak_ratio"),
        "results_history_growth": _growth(sweeps.get("history", []), "results_ms"),
        "results_large_window_ms": (sweeps.get("window") or [{}])[-1].get("results_ms"),
        "variant_view_history_growth": _growth(sweeps.get("history", []), "variant_view_ms"),
        "variant_view_large_window_ms": (sweeps.get("window") or [{}])[-1].get("variant_view_ms"),
        "health_ms": (sweeps.get("history") or [{}])[-1].get("health_ms"),
        "health_history_growth": _growth(sweeps.get("history", []), "health_ms"),
    }
    checks = []
    for key, path, target, comparator, threshold in TARGETS:
        value = measured[key]
        passed = None
        if value is not None:
            passed = {
                ">=": value >= threshold,
                "<=": value <= threshold,
                "<": value < threshold,
            }[comparator]
        checks.append(
            {"key": key, "path": path, "measured": value, "target": target, "pass": passed}
        )
    return checks


# --- output --------------------------------------------------------------------------------


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def bench_markdown(report: dict) -> str:
    machine, db = report["machine"], report["machine"].get("database", {})
    spec = report["spec"]
    lines = [
        f"Bench of {report['created_at']} ({report.get('elapsed_s', '?')} s): "
        f"{machine['cores']} cores (load average {machine.get('load_average', '?')} at the "
        f"start), PostgreSQL {db.get('postgresql', '?')}, "
        f"synchronous_commit={db.get('synchronous_commit', machine['synchronous_commit'])} "
        f"(the cluster's own setting: {machine['cluster_synchronous_commit']}; the embedded "
        "development cluster runs with it off, the bench turns it on unless "
        "--synchronous-commit off), "
        f"jit={db.get('jit', '?')} (jit_above_cost {db.get('jit_above_cost', '?')}), "
        f"gunicorn {machine['gunicorn']['workers']} {machine['gunicorn']['worker_class']} "
        f"worker(s) x {machine['gunicorn']['threads']} thread(s), DEBUG off, throttles off.",
        "",
        f"Sizes: {spec['duration']} s per run; clients {_list(spec['clients'])}; titles "
        f"{_list(spec['titles'])}; active experiments {_list(spec['experiments'])}; history "
        f"rows {_list(spec['history'])}; window rows {_list(spec['window'])}; heavy user "
        f"{spec['heavy_outcomes']:,} outcomes; {spec['users']} bench users.",
        "",
    ]
    if not report["http"]["available"]:
        lines += [f"HTTP half skipped: {report['http']['reason']}.", ""]
    lines += ["### Ratios against the issue's targets", ""]
    lines += ["| path | measured | target | pass |", "| --- | --- | --- | --- |"]
    for check in report["checks"]:
        verdict = {True: "pass", False: "FAIL", None: "not measured"}[check["pass"]]
        lines.append(
            f"| {check['path']} | {_cell(check['measured'])} | {check['target']} | {verdict} |"
        )
    pairs = report["pairs"]
    lines += ["", "### HTTP vs SQL (req/s; median and p99 ms)", ""]
    lines += [
        "| path | clients | HTTP req/s | SQL tx/s | HTTP/SQL | HTTP p50 | HTTP p99 | SQL p50 "
        "| SQL p99 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in ("deck", "outcomes"):
        for clients, row in pairs[name]["clients"].items():
            http = row.get("http", {})
            sql = row["sql"]
            lines.append(
                f"| {name} | {clients} | {_cell(http.get('tps'))} | {_cell(sql['tps'])} | "
                f"{_cell(row.get('ratio'))} | {_cell(http.get('p50_ms'))} | "
                f"{_cell(http.get('p99_ms'))} | {_cell(sql['p50_ms'])} | {_cell(sql['p99_ms'])} |"
            )
    paced = pairs["deck"].get("paced")
    if paced:
        lines += [
            "",
            f"Deck paced at about half of peak: {_cell(paced['tps'])} req/s (aimed at "
            f"{_cell(paced['target_tps'])}), p50 {_cell(paced['p50_ms'])} ms, p99 "
            f"{_cell(paced['p99_ms'])} ms, {paced['errors']} errors.",
        ]
    lines += ["", "### Assignment (SQL; tx/s and median ms)", ""]
    lines += [
        "| clients | first tx/s | first p50 | sticky tx/s | sticky p50 | first/sticky |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for clients, row in pairs["assignment"]["clients"].items():
        lines.append(
            f"| {clients} | {_cell(row['first']['tps'])} | {_cell(row['first']['p50_ms'])} | "
            f"{_cell(row['sticky']['tps'])} | {_cell(row['sticky']['p50_ms'])} | "
            f"{_cell(row['ratio'])} |"
        )
    sweeps = report["sweeps"]
    lines += ["", "### Deck sweeps (SQL, one client; ms)", ""]
    lines += ["| sweep | size | p50 | p99 | tx/s |", "| --- | --- | --- | --- | --- |"]
    for row in sweeps["experiments"]:
        lines.append(
            f"| active experiments | {row['experiments']} | {_cell(row['p50_ms'])} | "
            f"{_cell(row['p99_ms'])} | {_cell(row['tps'])} |"
        )
    for row in sweeps["catalogue"]:
        lines.append(
            f"| catalogue titles | {row['titles']:,} | {_cell(row['p50_ms'])} | "
            f"{_cell(row['p99_ms'])} | {_cell(row['tps'])} |"
        )
    heavy = sweeps["heavy_user"]
    for who in ("light", "heavy"):
        size = f"{heavy['outcomes']:,} outcomes" if who == "heavy" else "no outcomes"
        lines.append(
            f"| {who} user ({heavy['titles']:,} titles) | {size} | {_cell(heavy[who]['p50_ms'])}"
            f" | {_cell(heavy[who]['p99_ms'])} | {_cell(heavy[who]['tps'])} |"
        )
    lines += ["", "### Analytics (median ms, as the service role)", ""]
    lines += [
        "| sweep | history rows | window rows (all impressions in window) | results | "
        "variant daily view | telemetry_health | rollup (cron, once) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in ("history", "window"):
        for row in sweeps[name]:
            lines.append(
                f"| {name} | {row['history_rows']:,} | {row['window_rows']:,} "
                f"({row['window_impressions']:,}) | "
                f"{_cell(row['results_ms'])} | {_cell(row['variant_view_ms'])} | "
                f"{_cell(row['health_ms'])} | {_cell(row.get('rollup_ms'))} |"
            )
    return "\n".join(lines) + "\n"


def _list(values) -> str:
    return " → ".join(f"{value:,}" for value in values)


def bench_write(report: dict, out: str | Path) -> tuple[Path, Path]:
    directory = Path(out)
    if not directory.is_absolute():
        directory = Path(settings.BASE_DIR) / directory
    try:
        directory.mkdir(parents=True, exist_ok=True)
        json_path = directory / "bench.json"
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        md_path = directory / "bench.md"
        md_path.write_text(bench_markdown(report))
    except OSError as error:
        raise BenchError(f"cannot write to {directory}: {error.strerror}") from None
    return json_path, md_path
