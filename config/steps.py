"""One line per step of `make run` / `make test`, so that a first run is never silent.

    python -m config.steps "migrating the database" -- COMMAND [ARGS...]

Prints `==> migrating the database ...` before COMMAND starts (its own output, if any, follows)
and `==> migrating the database: done in 4.2s` after it (or `failed after 4.2s (exit 2)`),
then exits with COMMAND's exit code. Ctrl-C reaches COMMAND (which stops as it does alone,
gunicorn gracefully) and the step reports how long it ran.
Only the standard library: it runs before the virtualenv exists.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

USAGE = 'usage: python -m config.steps "WHAT" -- COMMAND [ARGS...]'


def elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def run_step(what: str, command: list[str], *, out=None, clock=time.monotonic) -> int:
    out = out or sys.stdout
    print(f"==> {what} ...", file=out, flush=True)
    started = clock()
    # The terminal sends Ctrl-C to COMMAND too: let it stop on its own and wait for it (a
    # Python handler, unlike SIG_IGN, is not inherited by COMMAND).
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        code = subprocess.Popen(command).wait()
    except OSError as error:
        print(f"==> {what}: cannot run {command[0]}: {error.strerror}", file=out, flush=True)
        return 127
    finally:
        signal.signal(signal.SIGINT, previous)
    took = elapsed(clock() - started)
    if code in (-signal.SIGINT, 128 + signal.SIGINT):
        print(f"==> {what}: stopped after {took}", file=out, flush=True)
        return 130
    if code < 0:
        code = 128 - code
    if code == 0:
        print(f"==> {what}: done in {took}", file=out, flush=True)
    else:
        print(f"==> {what}: failed after {took} (exit {code})", file=out, flush=True)
    return code


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(USAGE, file=sys.stderr)
        return 2
    return run_step(argv[0], argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
