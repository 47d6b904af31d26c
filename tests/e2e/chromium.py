"""Headless Chromium for the end-to-end tests and `make screenshots`.

Debian's packages only: /usr/bin/chromium and /usr/bin/chromedriver (`apt-get install chromium
chromium-driver`; `make test` installs them when run as root). Giving Selenium the driver's path
keeps Selenium Manager out of the way: it never tries to download a browser or a driver.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = "apt-get install chromium chromium-driver"
WINDOW_SIZE = (1280, 800)
WAIT_SECONDS = 10
FLAGS = (
    "--headless=new",
    # Root (CI, containers) cannot use Chromium's sandbox; the pages are our own.
    "--no-sandbox",
    "--disable-gpu",
    # Containers often have a tiny /dev/shm; Chromium then crashes mid-page without this.
    "--disable-dev-shm-usage",
    # No network traffic of its own: the machine may have no internet.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def missing_binaries() -> list[str]:
    """The Debian browser files that are not installed, as paths; empty when ready."""
    return [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]


@contextmanager
def start_chromium() -> Iterator[WebDriver]:
    """A fresh headless Chromium with its own throw-away profile, always quit afterwards."""
    profile = tempfile.mkdtemp(prefix="recsys-e2e-chromium-")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size={},{}".format(*WINDOW_SIZE))
    try:
        driver = webdriver.Chrome(
            service=Service(executable_path=str(CHROMEDRIVER)), options=options
        )
    except BaseException:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    try:
        # Explicit waits only (wait_for below): an implicit wait slows every negative check.
        driver.implicitly_wait(0)
        driver.set_page_load_timeout(30)
        size_viewport(driver, *WINDOW_SIZE)
        yield driver
    finally:
        with suppress(WebDriverException, OSError):
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def size_viewport(driver: WebDriver, width: int, height: int) -> None:
    """Make the page area (what screenshots capture) exactly width x height.

    --window-size sizes the whole window, and even headless Chromium keeps room for its toolbar.
    """
    inner = "return [window.innerWidth, window.innerHeight]"
    outer = driver.get_window_size()
    inner_width, inner_height = driver.execute_script(inner)
    driver.set_window_size(
        outer["width"] + width - inner_width, outer["height"] + height - inner_height
    )
    if driver.execute_script(inner) != [width, height]:
        raise RuntimeError(f"Chromium's viewport is not {width}x{height}")


def reset(driver: WebDriver) -> None:
    """Forget every cookie (of every site) and leave the current page, between tests."""
    driver.get("about:blank")
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})


def wait_for(driver: WebDriver, css: str, timeout: float = WAIT_SECONDS) -> WebElement:
    """The first visible element matching `css`, waiting up to `timeout` seconds for it."""
    return WebDriverWait(driver, timeout).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css)),
        message=f"no visible {css!r} on {driver.current_url} after {timeout}s",
    )


def wait_for_page_load(driver: WebDriver, timeout: float = WAIT_SECONDS) -> None:
    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("return document.readyState") == "complete",
        message=f"{driver.current_url} did not finish loading in {timeout}s",
    )


def admin_login(driver: WebDriver, live_server, username: str, password: str) -> None:
    """Submit the admin login form as a person would, and wait for the next page.

    `live_server` is pytest-django's fixture or any base URL ("http://127.0.0.1:8123"). Success
    is not checked here: the caller asserts on the page it lands on (index or error message).
    """
    base_url = str(live_server).rstrip("/")
    driver.get(f"{base_url}/admin/login/?next=/admin/")
    username_field = wait_for(driver, "#id_username")
    username_field.clear()
    username_field.send_keys(username)
    password_field = driver.find_element(By.ID, "id_password")
    password_field.clear()
    password_field.send_keys(password, Keys.ENTER)
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda _: detached(password_field), message="the admin login form was not submitted"
    )
    wait_for_page_load(driver)


def detached(element: WebElement) -> bool:
    """True once the page that held `element` is gone. Selenium's staleness_of, except that
    Chromium sometimes answers mid-navigation with "Node with given id does not belong to the
    document" (an unknown error, not a stale-element one): that also means gone."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in str(error):
            return True
        raise
    return False
