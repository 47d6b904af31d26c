import pytest
from selenium.webdriver.common.by import By

from tests.e2e.chromium import admin_login, wait_for

PASSWORD = "correct horse battery staple"
ADMIN_INDEX_MARKERS = ("Site administration", "Recsys Experiments")

pytestmark = pytest.mark.e2e


def test_staff_user_logs_in_and_sees_the_admin_index(browser, live_server, staff_user):
    admin_login(browser, live_server, staff_user.username, PASSWORD)

    assert browser.current_url == f"{live_server.url}/admin/"
    page = wait_for(browser, "body").text
    assert any(marker in page for marker in ADMIN_INDEX_MARKERS), page
    assert not browser.find_elements(By.ID, "id_password")


def test_wrong_password_shows_the_error(browser, live_server, staff_user):
    admin_login(browser, live_server, staff_user.username, "not the password")

    error = wait_for(browser, ".errornote")
    assert "correct username and password" in error.text
    assert browser.find_elements(By.ID, "id_password")
