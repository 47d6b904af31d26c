"""Real servers for tests and tools: gunicorn serving the project, and a TCP proxy in front of
PostgreSQL that a test can cut and restore (the database "going down" for the web tier
without touching the cluster every other test uses)."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from config.localdb import PROJECT_ROOT

SERVER_START_TIMEOUT = 60


class ServerError(Exception):
    """A server that did not start; printed as one line."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def health_status(port: int) -> int | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/api/health")
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def log_tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def gunicorn(
    log: Path, *, env: dict[str, str] | None = None, workers: int = 2, ready_status: int = 200
) -> Iterator[str]:
    """The project served on 127.0.0.1 until the block ends; yields its base URL. Ready once
    /api/health answers `ready_status`."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--access-logfile", "-",
    ]  # fmt: skip
    with log.open("w") as output:
        # Its own process group, so that stopping it stops the workers too.
        server = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while health_status(port) != ready_status:
            if server.poll() is not None:
                raise ServerError(
                    f"gunicorn exited with code {server.returncode}; its log:\n{log_tail(log)}"
                )
            if time.monotonic() > deadline:
                raise ServerError(
                    f"http://127.0.0.1:{port}/api/health did not answer {ready_status} within "
                    f"{SERVER_START_TIMEOUT} s; gunicorn's log:\n{log_tail(log)}"
                )
            time.sleep(0.25)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(server)


def stop(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


class DatabaseProxy:
    """Forwards 127.0.0.1:<port> to the PostgreSQL of a Django connection's settings (a unix
    socket folder or a TCP host; the URL's `?host=&port=` land in OPTIONS). `down()`
    closes the listener and every open connection, so the database looks stopped to whoever
    connects through the proxy; `up()` listens again on the same port."""

    def __init__(self, settings_dict: dict):
        options = settings_dict.get("OPTIONS", {})
        host = settings_dict.get("HOST") or options.get("host") or "localhost"
        port = settings_dict.get("PORT") or options.get("port") or 5432
        self.target = (host, int(port))
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def _connect_target(self) -> socket.socket:
        host, port = self.target
        if host.startswith("/"):
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(f"{host}/.s.PGSQL.{port}")
        else:
            upstream = socket.create_connection((host, port))
        return upstream

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._open = self._open, []
        for sock in [listener, *sockets]:
            if sock is not None:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = self._connect_target()
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
