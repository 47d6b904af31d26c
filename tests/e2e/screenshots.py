"""`make screenshots`: PNGs of admin pages as a browser renders them, from the development data.

    python -m config.localdb run -- python -m tests.e2e.screenshots

Serves the project with gunicorn on a free 127.0.0.1 port, with this process's environment (the
development database, through `config.localdb run`), waits for /api/health, logs in as `admin`
with the password `manage.py dev_logins` keeps in .local/admin_password, and saves one 1280x800
PNG per entry of PAGES as docs/screenshots/<name>.png. The server is always stopped.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path

from config.localdb import LOCAL_DIR, PROJECT_ROOT
from tests.e2e.chromium import (
    INSTALL_HINT,
    admin_login,
    missing_binaries,
    start_chromium,
    wait_for_page_load,
)
from tests.servers import ServerError, gunicorn

# docs/screenshots/<name>.png -> the page, relative to the server root. Add pages here.
EXPERIMENT = "/admin/recsys_experiments/experiment/"
PAGES = {
    "admin-index": "/admin/",
    "experiments": EXPERIMENT,
    "experiment-editor": EXPERIMENT + "by-key/swipe_blend_test/",
    # The fragment survives the by-key redirect: the page opens at the variant rows.
    "variant-editor": EXPERIMENT + "by-key/swipe_blend_test/#variants-group",
    "rotate-salt": EXPERIMENT + "by-key/swipe_blend_test/rotate-salt/",
    "experiment-results": EXPERIMENT + "by-key/swipe_blend_test/results/",
    "experiment-breakdowns": EXPERIMENT + "by-key/swipe_blend_test/results/#recsys-breakdown",
    "assignments": "/admin/recsys/assignments/?q=demo",
    "diagnostics": "/admin/recsys/diagnostics/",
}
OUTPUT_DIR = PROJECT_ROOT / "docs" / "screenshots"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD_FILE = LOCAL_DIR / "admin_password"


class ScreenshotError(Exception):
    """Printed as the command's one-line failure message."""


def admin_password() -> str:
    try:
        return ADMIN_PASSWORD_FILE.read_text().strip()
    except FileNotFoundError:
        raise ScreenshotError(
            f"{ADMIN_PASSWORD_FILE} is missing: run `manage.py dev_logins` first "
            "(`make screenshots` does)"
        ) from None


def take_screenshots() -> list[Path]:
    missing = missing_binaries()
    if missing:
        raise ScreenshotError(f"{' and '.join(missing)} not installed ({INSTALL_HINT})")
    if not os.environ.get("DATABASE_URL"):
        raise ScreenshotError(
            "DATABASE_URL is not set: run through `python -m config.localdb run --` "
            "(`make screenshots` does)"
        )
    password = admin_password()
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    saved = []
    with tempfile.TemporaryDirectory(prefix="recsys-screenshots-") as scratch:
        log = Path(scratch) / "gunicorn.log"
        with gunicorn(log) as base_url, start_chromium() as browser:
            admin_login(browser, base_url, ADMIN_USERNAME, password)
            if "/admin/login/" in browser.current_url:
                raise ScreenshotError(
                    f"logging in as {ADMIN_USERNAME!r} failed: is {ADMIN_PASSWORD_FILE} "
                    "the password `manage.py dev_logins` set?"
                )
            for name, path in PAGES.items():
                browser.get(base_url + path)
                wait_for_page_load(browser)
                if "/admin/login/" in browser.current_url:
                    raise ScreenshotError(f"{path} sent the browser to the login page")
                target = OUTPUT_DIR / f"{name}.png"
                if not browser.save_screenshot(str(target)):
                    raise ScreenshotError(f"could not save {target}")
                print(f"screenshots: {path} -> {target.relative_to(PROJECT_ROOT)}", flush=True)
                saved.append(target)
    return saved


def main() -> int:
    # `kill` and Ctrl-C both unwind through the finally blocks, which stop gunicorn.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        take_screenshots()
    except (ScreenshotError, ServerError) as error:
        print(f"screenshots: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
