"""The embedded local PostgreSQL used by `make run`, `make test` and CI when DATABASE_URL is unset.

    python -m config.localdb start|ensure|stop|status|url
    python -m config.localdb run -- COMMAND [ARGS...]

`ensure` starts the cluster unless DATABASE_URL is set (`make db`; `start` always starts it).
`status` prints running or stopped and exits 0 when running, 3 when stopped.
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

    def _ensure_database(self) -> None:
        psql = shutil.which("psql") or str(find_server_binaries() / "psql")
        connect = [
            psql,
            "-h",
            str(self.socket_dir),
            "-p",
            str(PORT),
            "-U",
            DB_USER,
            "-X",
            "-q",
            "-tA",
        ]
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


def main(argv: list[str]) -> int:
    usage = "usage: python -m config.localdb start|ensure|stop|status|url|run -- COMMAND [ARGS...]"
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
        print("localdb: stopped" if cluster.stop() else "localdb: not running")
    elif action == "status":
        bindir = find_server_binaries()
        running = bindir is not None and cluster.is_running(bindir)
        print(f"localdb: {'running' if running else 'stopped'} ({cluster.base})")
        return 0 if running else 3
    elif action == "url":
        print(cluster.url)
    elif action == "run":
        command = rest[1:] if rest[:1] == ["--"] else rest
        if not command:
            print(usage, file=sys.stderr)
            return 2
        env = development_environment()
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
