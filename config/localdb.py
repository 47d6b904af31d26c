"""The embedded local PostgreSQL used by `make run`, `make test` and CI when DATABASE_URL is unset.

    python -m config.localdb start|ensure|stop|status|url
    python -m config.localdb run -- COMMAND [ARGS...]

`ensure` starts the cluster unless DATABASE_URL is set (`make db`; `start` always starts it).
`status` prints running or stopped and exits 0 when running, 3 when stopped.
`standby` starts (or restarts from a fresh `pg_basebackup -R`) a streaming hot standby of the
cluster and prints its URL; `standby-stop` stops and deletes it (the test suite's replica tests
use both, tests/conftest.py). With RECSYS_PGBOUNCER=1, `run` starts PgBouncer in transaction
mode in front of the cluster for the command's lifetime and points DATABASE_URL at it
(`make test`'s pooled API-test step; docs/development.md).
`run` is the only way the tooling starts anything: it makes sure the cluster is up (unless
DATABASE_URL is set, in which case that database is used and nothing local starts), fills in
the development defaults (a generated SECRET_KEY kept under .local/, DEBUG on, local hosts) and
then execs COMMAND. Production settings never see these defaults.

The cluster lives in .local/pg/ (data, log and unix socket; no TCP listener; a port derived
from the project path so that two clones never collide). PostgreSQL refuses to run as root, so
as root the server runs as the `postgres` system user; when that user cannot reach .local/
(a clone under /root or a mode-700 temporary folder) or the socket path would be too long for a
unix socket, the cluster lives in /var/tmp/recsys-experiments-pg-<hash of the project path>/.

Only the standard library is used: this module runs before Django is configured.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = PROJECT_ROOT / ".local"
DB_NAME = "recsys"
DB_USER = "recsys"
SERVER_USER_WHEN_ROOT = "postgres"
# sun_path is 108 bytes on Linux, including the terminating NUL.
MAX_SOCKET_PATH = 107
PATH_DIGEST = hashlib.sha1(str(PROJECT_ROOT).encode()).hexdigest()  # noqa: S324 - a name, not security
PORT = 55000 + int(PATH_DIGEST[:8], 16) % 2000
# The standby and PgBouncer of the same clone, in ranges of their own.
STANDBY_PORT = PORT + 2000
PGBOUNCER_PORT = PORT + 4000
PGBOUNCER_ENV = "RECSYS_PGBOUNCER"


class LocalDbError(Exception):
    """A problem the operator must fix; printed as one line."""


def is_root() -> bool:
    return os.geteuid() == 0


def find_server_binaries() -> Path | None:
    """The bin directory holding initdb and pg_ctl, newest PostgreSQL first."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        reverse=True,
    )
    for pg_ctl in candidates:
        if (pg_ctl.parent / "initdb").exists():
            return pg_ctl.parent
    return None


def ensure_server_binaries() -> Path:
    bindir = find_server_binaries()
    if bindir:
        return bindir
    if not is_root():
        raise LocalDbError(
            "PostgreSQL server binaries (initdb, pg_ctl) are missing: install them "
            "(sudo apt-get install -y postgresql) or set DATABASE_URL to an existing database."
        )
    print(
        "localdb: installing the PostgreSQL server (apt-get install -y postgresql)...", flush=True
    )
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"],
    ):
        subprocess.run(command, check=True, env=apt_env, stdout=subprocess.DEVNULL)
    bindir = find_server_binaries()
    if not bindir:
        raise LocalDbError("apt-get installed postgresql but initdb/pg_ctl are still not found.")
    return bindir


def server_account() -> pwd.struct_passwd | None:
    """The unprivileged account that runs the server when we are root; None means 'ourselves'."""
    if not is_root():
        return None
    try:
        return pwd.getpwnam(SERVER_USER_WHEN_ROOT)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", SERVER_USER_WHEN_ROOT],
            check=True,
        )
        return pwd.getpwnam(SERVER_USER_WHEN_ROOT)


def can_reach(account: pwd.struct_passwd | None, directory: Path) -> bool:
    """Whether `account` can traverse every folder down to `directory`'s parent and write there."""
    if account is None:
        return True
    probe = directory.parent
    while not probe.exists():
        probe = probe.parent
    for folder in [*reversed(probe.parents), probe]:
        mode = folder.stat()
        if mode.st_uid == account.pw_uid:
            allowed = mode.st_mode & 0o100
        elif mode.st_gid == account.pw_gid:
            allowed = mode.st_mode & 0o010
        else:
            allowed = mode.st_mode & 0o001
        if not allowed:
            return False
    return True


def cluster_dir() -> Path:
    preferred = LOCAL_DIR / "pg"
    socket_path = preferred / "run" / f".s.PGSQL.{PORT}"
    if can_reach(server_account(), preferred) and len(str(socket_path)) <= MAX_SOCKET_PATH:
        return preferred
    return Path("/var/tmp") / f"recsys-experiments-pg-{PATH_DIGEST[:12]}"


class Cluster:
    def __init__(self) -> None:
        self.base = cluster_dir()
        self.data = self.base / "data"
        self.socket_dir = self.base / "run"
        self.log = self.base / "server.log"
        self.account = server_account()

    @property
    def url(self) -> str:
        return f"postgres://{DB_USER}@/{DB_NAME}?host={self.socket_dir}&port={PORT}"

    def _as_server_user(self, command: list[str]) -> list[str]:
        if self.account is None:
            return command
        return ["runuser", "-u", self.account.pw_name, "--", *command]

    def _run(self, command: list[str], **kwargs) -> subprocess.CompletedProcess:
        # cwd=/ because the server user may not be allowed into the caller's folder.
        return subprocess.run(self._as_server_user(command), cwd="/", text=True, **kwargs)

    def is_running(self, bindir: Path) -> bool:
        if not (self.data / "PG_VERSION").exists():
            return False
        result = self._run(
            [str(bindir / "pg_ctl"), "status", "-D", str(self.data)], capture_output=True
        )
        return result.returncode == 0

    def _prepare_folders(self) -> None:
        for folder in (self.base, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o700)
            if self.account is not None:
                os.chown(folder, self.account.pw_uid, self.account.pw_gid)

    def _initdb(self, bindir: Path) -> None:
        print(f"localdb: creating a PostgreSQL cluster in {self.data}", flush=True)
        result = self._run(
            [
                str(bindir / "initdb"),
                "-D", str(self.data),
                "-U", DB_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise LocalDbError(f"initdb failed: {result.stderr.strip().splitlines()[-1:]}")
        # Development cluster: unix socket only, a private port, and commits that do not wait
        # for the disk (a crash may lose the last moments, never corrupts).
        settings = (
            "\n# recsys-experiments local cluster\n"
            "listen_addresses = ''\n"
            f"unix_socket_directories = '{self.socket_dir}'\n"
            f"port = {PORT}\n"
            "synchronous_commit = off\n"
            "max_connections = 100\n"
            # What a streaming standby needs (the defaults, written down: `standby`).
            "wal_level = replica\n"
            "max_wal_senders = 10\n"
        )
        self._run(["sh", "-c", f"cat >> '{self.data}/postgresql.conf'"], input=settings, check=True)

    def start(self) -> None:
        bindir = ensure_server_binaries()
        LOCAL_DIR.mkdir(exist_ok=True)
        with self._lock():
            if self.is_running(bindir):
                return
            self._prepare_folders()
            if not (self.data / "PG_VERSION").exists():
                self._initdb(bindir)
            result = self._run(
                [
                    str(bindir / "pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                ],
                capture_output=True,
            )
            if result.returncode != 0:
                tail = self._log_tail()
                raise LocalDbError(f"PostgreSQL did not start (see {self.log}): {tail}")
            self._ensure_database()

    def psql(self, *args: str) -> str:
        """One psql call on the cluster's `postgres` database; its output, stripped."""
        result = subprocess.run(
            [*self._psql_connect(), "-d", "postgres", *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip()

    def _psql_connect(self) -> list[str]:
        psql = shutil.which("psql") or str(find_server_binaries() / "psql")
        return [psql, "-h", str(self.socket_dir), "-p", str(PORT), "-U", DB_USER, "-X", "-q", "-tA"]

    def _ensure_database(self) -> None:
        connect = self._psql_connect()
        exists = subprocess.run(
            [
                *connect,
                "-d",
                "postgres",
                "-c",
                f"select 1 from pg_database where datname = '{DB_NAME}'",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        if exists.stdout.strip() != "1":
            subprocess.run(
                [*connect, "-d", "postgres", "-c", f"create database {DB_NAME}"], check=True
            )

    def stop(self) -> bool:
        bindir = find_server_binaries()
        if bindir is None or not self.is_running(bindir):
            return False
        self._run(
            [str(bindir / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data)], check=True
        )
        return True

    def _log_tail(self) -> str:
        try:
            lines = [line for line in self.log.read_text().splitlines() if line.strip()]
        except OSError:
            return "no server log"
        return lines[-1] if lines else "empty server log"

    @contextlib.contextmanager
    def _lock(self):
        with open(LOCAL_DIR / "pg.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _companion_dir(primary: Cluster, name: str, port: int) -> Path:
    """Where the standby or PgBouncer of `primary` lives: next to its cluster, unless the
    socket path would be too long there."""
    preferred = primary.base / name
    if len(str(preferred / "run" / f".s.PGSQL.{port}")) <= MAX_SOCKET_PATH:
        return preferred
    return Path("/var/tmp") / f"recsys-experiments-{name}-{PATH_DIGEST[:12]}"


def _prepare_folder(folder: Path, account: pwd.struct_passwd | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    if account is not None:
        os.chown(folder, account.pw_uid, account.pw_gid)


class Standby:
    """A streaming hot standby of the cluster: `pg_basebackup -R` into .../standby/data, its
    own unix socket folder and port, read-only, replaying the primary's WAL as it comes."""

    def __init__(self, primary: Cluster | None = None) -> None:
        self.primary = primary or Cluster()
        self.base = _companion_dir(self.primary, "standby", STANDBY_PORT)
        self.data = self.base / "data"
        self.socket_dir = self.base / "run"
        self.log = self.base / "server.log"
        self.port = STANDBY_PORT

    def url(self, database: str = DB_NAME) -> str:
        return f"postgres://{DB_USER}@/{database}?host={self.socket_dir}&port={STANDBY_PORT}"

    def start(self) -> None:
        """A fresh standby: any previous one is stopped and deleted first."""
        bindir = ensure_server_binaries()
        self.primary.start()
        wal_level = self.primary.psql("-c", "show wal_level")
        if wal_level not in {"replica", "logical"}:
            raise LocalDbError(
                f"wal_level is {wal_level}: a standby needs wal_level = replica in "
                f"{self.primary.data}/postgresql.conf (then restart: localdb stop, start)"
            )
        self.stop()
        _prepare_folder(self.base, self.primary.account)
        result = self.primary._run(
            [
                str(bindir / "pg_basebackup"),
                "-h", str(self.primary.socket_dir),
                "-p", str(PORT),
                "-U", DB_USER,
                "-D", str(self.data),
                "-R",  # standby.signal and primary_conninfo: a streaming standby
                "-X", "stream",
                "-c", "fast",  # no waiting for a spread checkpoint
                "--no-sync",
            ],
            capture_output=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise LocalDbError(f"pg_basebackup failed: {result.stderr.strip()[-300:]}")
        _prepare_folder(self.socket_dir, self.primary.account)
        overrides = (
            "\n# recsys-experiments standby (config/localdb.py Standby)\n"
            f"unix_socket_directories = '{self.socket_dir}'\n"
            f"port = {STANDBY_PORT}\n"
            "hot_standby = on\n"
        )
        self.primary._run(
            ["sh", "-c", f"cat >> '{self.data}/postgresql.conf'"], input=overrides, check=True
        )
        result = self.primary._run(
            [str(bindir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.data),
             "-l", str(self.log)],
            capture_output=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise LocalDbError(f"the standby did not start (see {self.log})")

    def stop(self) -> bool:
        """Stop and delete the standby; whether one was running."""
        bindir = find_server_binaries()
        running = bindir is not None and (self.data / "PG_VERSION").exists()
        if running:
            status = self.primary._run(
                [str(bindir / "pg_ctl"), "status", "-D", str(self.data)], capture_output=True
            )
            running = status.returncode == 0
            if running:
                self.primary._run(
                    [str(bindir / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data)],
                    check=True,
                    capture_output=True,
                )
        shutil.rmtree(self.base, ignore_errors=True)
        return running


class PgBouncer:
    """PgBouncer in transaction mode in front of the cluster, on a unix socket only: every
    transaction of a client may run on another server connection, so nothing a session sets
    outlives its transaction unless it leaks (docs/scaling.md, "Connection pooling")."""

    POOL_SIZE = 3

    def __init__(self, primary: Cluster | None = None) -> None:
        self.primary = primary or Cluster()
        self.base = _companion_dir(self.primary, "pgbouncer", PGBOUNCER_PORT)
        self.socket_dir = self.base / "run"
        self.ini = self.base / "pgbouncer.ini"
        self.pidfile = self.base / "pgbouncer.pid"
        self.log = self.base / "pgbouncer.log"

    @property
    def url(self) -> str:
        return f"postgres://{DB_USER}@/{DB_NAME}?host={self.socket_dir}&port={PGBOUNCER_PORT}"

    def _binary(self) -> str:
        found = shutil.which("pgbouncer") or (
            "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
        )
        if found:
            return found
        if not is_root():
            raise LocalDbError(
                "pgbouncer is missing: sudo apt-get install -y pgbouncer "
                f"(or run without {PGBOUNCER_ENV})"
            )
        print("localdb: installing pgbouncer (apt-get install -y pgbouncer)...", flush=True)
        apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", "pgbouncer"],
            check=True,
            env=apt_env,
            stdout=subprocess.DEVNULL,
        )
        return shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"

    def start(self) -> None:
        binary = self._binary()
        self.stop()
        _prepare_folder(self.base, self.primary.account)
        _prepare_folder(self.socket_dir, self.primary.account)
        auth_file = self.base / "users.txt"
        config = (
            "[databases]\n"
            f"* = host={self.primary.socket_dir} port={PORT}\n"
            "[pgbouncer]\n"
            "listen_addr =\n"
            f"listen_port = {PGBOUNCER_PORT}\n"
            f"unix_socket_dir = {self.socket_dir}\n"
            "auth_type = trust\n"
            f"auth_file = {auth_file}\n"
            f"admin_users = {DB_USER}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.POOL_SIZE}\n"
            # Keep them all open, so that the round robin below really rotates.
            f"min_pool_size = {self.POOL_SIZE}\n"
            "max_client_conn = 200\n"
            # Hand each transaction the least recently used server: consecutive transactions
            # of one client land on different server connections.
            "server_round_robin = 1\n"
            "ignore_startup_parameters = extra_float_digits\n"
            f"logfile = {self.log}\n"
            f"pidfile = {self.pidfile}\n"
        )
        for path, text in ((self.ini, config), (auth_file, f'"{DB_USER}" ""\n')):
            path.write_text(text)
            if self.primary.account is not None:
                os.chown(path, self.primary.account.pw_uid, self.primary.account.pw_gid)
        result = self.primary._run([binary, "-d", "-q", str(self.ini)], capture_output=True)
        if result.returncode != 0:
            raise LocalDbError(f"pgbouncer did not start: {result.stderr.strip()[-300:]}")

    def _pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def release(self, database: str) -> None:
        """Close PgBouncer's server connections to `database` (KILL, then RESUME so that
        later clients are served again), so that it can be dropped."""
        psql = shutil.which("psql") or str(find_server_binaries() / "psql")
        for command in (f"KILL {database}", f"RESUME {database}"):
            subprocess.run(
                [psql, "-h", str(self.socket_dir), "-p", str(PGBOUNCER_PORT), "-U", DB_USER,
                 "-X", "-q", "-d", "pgbouncer", "-c", command],
                capture_output=True,
                check=False,
            )  # fmt: skip

    def stop(self) -> bool:
        pid = self._pid()
        if pid is None:
            return False
        os.kill(pid, 15)
        for _ in range(100):
            if self._pid() is None:
                return True
            time.sleep(0.05)
        return True


def stored_secret(name: str, length: int = 50) -> str:
    """A generated value kept in .local/<name> so it survives restarts."""
    LOCAL_DIR.mkdir(exist_ok=True)
    path = LOCAL_DIR / name
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(length)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def development_environment() -> dict[str, str]:
    env = dict(os.environ)
    if not env.get("DATABASE_URL"):
        cluster = Cluster()
        cluster.start()
        env["DATABASE_URL"] = cluster.url
    env.setdefault("SECRET_KEY", stored_secret("secret_key"))
    env.setdefault("DEBUG", "true")
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
    return env


def run_behind_pgbouncer(command: list[str], env: dict[str, str]) -> int:
    """COMMAND with DATABASE_URL through a PgBouncer started for it (transaction mode, no
    server-side cursors), stopped when it ends; its exit code."""
    if os.environ.get("DATABASE_URL"):
        raise LocalDbError(f"{PGBOUNCER_ENV} needs the local cluster: unset DATABASE_URL")
    bouncer = PgBouncer()
    bouncer.start()
    env = {
        **env,
        "DATABASE_URL": bouncer.url,
        "DATABASE_DISABLE_SERVER_SIDE_CURSORS": "true",
        "RECSYS_PGBOUNCER_SOCKET": str(bouncer.socket_dir),
    }
    try:
        return subprocess.run(command, env=env, check=False).returncode
    finally:
        bouncer.stop()


def main(argv: list[str]) -> int:
    usage = (
        "usage: python -m config.localdb "
        "start|ensure|stop|status|url|standby|standby-stop|run -- COMMAND [ARGS...]"
    )
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__.strip() if argv else usage)
        return 0 if argv else 2
    action, rest = argv[0], argv[1:]
    cluster = Cluster()
    if action == "start":
        cluster.start()
        print(f"localdb: running at {cluster.url}")
    elif action == "ensure":
        if os.environ.get("DATABASE_URL"):
            print("localdb: DATABASE_URL is set: using it, nothing local to start")
        else:
            cluster.start()
            print(f"localdb: running ({cluster.base})")
    elif action == "stop":
        PgBouncer(cluster).stop()
        Standby(cluster).stop()
        print("localdb: stopped" if cluster.stop() else "localdb: not running")
    elif action == "status":
        bindir = find_server_binaries()
        running = bindir is not None and cluster.is_running(bindir)
        print(f"localdb: {'running' if running else 'stopped'} ({cluster.base})")
        return 0 if running else 3
    elif action == "url":
        print(cluster.url)
    elif action == "standby":
        standby = Standby(cluster)
        standby.start()
        print(standby.url())
    elif action == "standby-stop":
        print("localdb: standby stopped" if Standby(cluster).stop() else "localdb: no standby")
    elif action == "run":
        command = rest[1:] if rest[:1] == ["--"] else rest
        if not command:
            print(usage, file=sys.stderr)
            return 2
        env = development_environment()
        if env.get(PGBOUNCER_ENV) in {"1", "true", "yes"}:
            return run_behind_pgbouncer(command, env)
        os.execvpe(command[0], command, env)  # noqa: S606 - the operator's own command
    else:
        print(usage, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except LocalDbError as error:
        print(f"localdb: {error}", file=sys.stderr)
        sys.exit(1)
    except subprocess.CalledProcessError as error:
        print(
            f"localdb: {' '.join(map(str, error.cmd))} failed with exit code {error.returncode}",
            file=sys.stderr,
        )
        sys.exit(1)
