"""The admin's main flow in a real browser: create an experiment with two variants, activate
it, force a user's variant on the Assignments page, fetch that user's deck through the API and
find the forced variant in the tags, then see the results chart drawn and the daily views by
variant in their tabs."""

import json
import urllib.request

import pytest
from knox.models import AuthToken
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from recsys_experiments.models import Assignment, Experiment
from telemetry.models import Impression
from tests.e2e.chromium import admin_login, wait_for, wait_for_page_load
from tests.factories.catalog import MediaItemFactory
from tests.factories.users import UserFactory

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"
VARIANTS = [
    {"name": "control", "weight": 0.5, "config": {}},
    {"name": "treatment", "weight": 0.5, "config": {"diversity_cap": 2}},
]  # what the editor stores below


def api_post(base_url: str, path: str, body: dict, token: str | None = None) -> dict:
    request = urllib.request.Request(  # noqa: S310 - the live test server on 127.0.0.1
        f"{base_url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Token {token}"} if token else {}),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
        return json.loads(response.read())


def click(browser, css: str) -> None:
    wait_for(browser, css).click()
    wait_for_page_load(browser)


def test_create_activate_force_and_see_it_in_the_deck_and_the_results(
    browser, live_server, staff_user
):
    MediaItemFactory.create_batch(30)
    viewer = UserFactory(username="e2e_viewer")
    admin_login(browser, live_server, staff_user.username, PASSWORD)

    # Create a draft with two variants; the editor shows the split live.
    browser.get(f"{live_server.url}/admin/recsys_experiments/experiment/add/")
    wait_for(browser, "#id_key").send_keys("e2e_blend")
    # The editor starts with control and treatment at 0.5 each; cap the treatment's genres.
    wait_for(browser, "#id_variants-1-knob_diversity_cap").send_keys("2")
    assert "control 0.5 · treatment 0.5" in wait_for(browser, "#recsys-split-legend").text
    click(browser, "input[name=_save]")
    assert "e2e_blend" in wait_for(browser, "#result_list").text
    assert Experiment.objects.get(key="e2e_blend").variants == VARIANTS

    # Activate it from its page.
    browser.find_element(By.LINK_TEXT, "e2e_blend").click()
    wait_for_page_load(browser)
    click(browser, "#recsys-activate")
    assert "Activated e2e_blend" in wait_for(browser, ".messagelist").text
    assert Experiment.objects.get(key="e2e_blend").status == "active"

    # Force the viewer into the treatment on the Assignments page.
    browser.get(f"{live_server.url}/admin/recsys/assignments/")
    search = wait_for(browser, "#recsys-q")
    search.send_keys("e2e_viewer")
    search.submit()
    wait_for_page_load(browser)
    row = wait_for(browser, 'tr[data-experiment="e2e_blend"]')
    assert "not yet assigned" in row.text
    Select(row.find_element(By.NAME, "variant")).select_by_value("treatment")
    row.find_element(By.CSS_SELECTOR, "input[value=Force]").click()
    wait_for_page_load(browser)
    row = wait_for(browser, 'tr[data-experiment="e2e_blend"]')
    assert row.find_element(By.CSS_SELECTOR, ".current-variant").text == "treatment"
    assert row.find_element(By.CSS_SELECTOR, ".mode").text == "manual"
    assert Assignment.objects.get(user=viewer).assignment_mode == "manual"

    # The viewer's deck, through the API, is tagged with the forced variant.
    token = api_post(
        live_server.url, "/api/v1/auth/token", {"username": "e2e_viewer", "password": PASSWORD}
    )["token"]
    assert AuthToken.objects.filter(user=viewer).count() == 1
    deck = api_post(live_server.url, "/api/v1/deck", {"limit": 8}, token)
    assert deck["experiments"] == {"e2e_blend": "treatment"}
    tags = Impression.objects.filter(rec_request_id=deck["rec_request_id"]).values_list(
        "request_context", flat=True
    )
    assert len(tags) == 8
    assert all(tag["experiments"] == {"e2e_blend": "treatment"} for tag in tags)

    # The results page draws today's impressions for the treatment.
    experiment = Experiment.objects.get(key="e2e_blend")
    browser.get(f"{live_server.url}/admin/recsys_experiments/experiment/{experiment.pk}/results/")
    chart = wait_for(browser, "#recsys-chart-7 svg")
    assert chart.size["width"] > 300 and chart.size["height"] > 100
    drawn = browser.find_elements(
        By.CSS_SELECTOR, '#recsys-chart-7 polyline[data-series="treatment"]'
    )
    assert drawn, "the treatment's impressions line is drawn"
    data = json.loads(browser.find_element(By.ID, "recsys-chart-data").get_attribute("textContent"))
    assert data["last_7_days"]["impressions"]["treatment"][-1] == 8

    # The daily views by variant, as tabs over the page's window: source first.
    def totals():
        rows = browser.find_elements(By.CSS_SELECTOR, "#recsys-breakdown-totals tbody tr")
        return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]

    served = Impression.objects.filter(request_context__experiments__e2e_blend="treatment")
    sources = sorted({impression.source for impression in served})
    assert [(row[0], row[1]) for row in totals()] == [("treatment", s) for s in sources]
    assert sum(int(row[2]) for row in totals()) == 8
    click(browser, '#recsys-breakdown-tabs a[data-view="position"]')
    wait_for(browser, '#recsys-breakdown-tabs strong[data-view="position"]')
    positions = sorted(impression.position for impression in served)
    assert [(row[1], row[2]) for row in totals()] == [(str(p), "1") for p in positions]
    wait_for(browser, "#recsys-breakdown-position svg.recsys-chart")
    [impressions_line, _] = browser.find_elements(
        By.CSS_SELECTOR, '#recsys-breakdown-position polyline[data-series="treatment"]'
    )
    drawn = impressions_line.get_attribute("points").split()
    assert len(drawn) == len(positions), "one point per position for the treatment"
    click(browser, '#recsys-breakdown-tabs a[data-view="genre"]')
    wait_for(browser, "#recsys-breakdown-genre #recsys-breakdown-totals")
    assert totals() and all(row[0] == "treatment" for row in totals())
