"""The variant editor and the schedule in a real browser: rows added and removed with the
admin's inlines.js, weights typed as any positive numbers, the live split bar, errors on the
row, the normalised weights stored and shown after the save; the scheduled start in the list."""

from datetime import timedelta

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from recsys_experiments.models import Experiment
from tests.e2e.chromium import admin_login, detached, wait_for, wait_for_page_load
from tests.factories.experiments import ActiveExperimentFactory

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"
CHANGELIST = "/admin/recsys_experiments/experiment/"


def submit(browser, button: str) -> None:
    """Click a submit button and wait until the next page has replaced this one."""
    page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.CSS_SELECTOR, button).click()
    WebDriverWait(browser, 20).until(lambda _: detached(page))
    wait_for_page_load(browser)


def retype(element, text: str) -> None:
    element.clear()
    element.send_keys(text)


def legend(browser) -> str:
    return wait_for(browser, "#recsys-split-legend").text


def segment_widths(browser) -> list[float]:
    """The split bar's segments as shares of the bar's width (rounded to 0.01)."""
    bar = wait_for(browser, "#recsys-split-bar")
    total = bar.size["width"]
    return [
        round(segment.size["width"] / total, 2)
        for segment in bar.find_elements(By.CSS_SELECTOR, ".recsys-split-segment")
    ]


def test_rows_weights_split_bar_row_errors_and_the_stored_weights(browser, live_server, staff_user):
    admin_login(browser, live_server, staff_user.username, PASSWORD)
    browser.get(f"{live_server.url}{CHANGELIST}add/")
    wait_for(browser, "#id_key").send_keys("e2e_split")

    # Two rows to start with; weights as plain numbers: the bar shows the shares as typed.
    retype(wait_for(browser, "#id_variants-0-weight"), "70")
    retype(wait_for(browser, "#id_variants-1-weight"), "30")
    assert legend(browser) == "Normalised on save: control 0.7 · treatment 0.3"
    assert segment_widths(browser) == [0.7, 0.3]
    assert wait_for(browser, "#variants-0 .recsys-share").text == "70.0%"

    # A third row through the admin's "Add another variant".
    browser.find_element(By.LINK_TEXT, "Add another variant").click()
    retype(wait_for(browser, "#id_variants-2-name"), "bold")
    retype(wait_for(browser, "#id_variants-2-weight"), "100%")
    assert legend(browser) == "Normalised on save: control 0.35 · treatment 0.15 · bold 0.5"
    assert segment_widths(browser) == [0.35, 0.15, 0.5]

    # A bad weight is flagged at once; removing the row puts the split back.
    retype(wait_for(browser, "#id_variants-2-weight"), "-5")
    assert "Every weight must be a positive number (bold)" in legend(browser)
    browser.find_element(By.CSS_SELECTOR, "#variants-2 a.inline-deletelink").click()
    assert legend(browser) == "Normalised on save: control 0.7 · treatment 0.3"
    assert not browser.find_elements(By.ID, "variants-2")

    # A knob out of range comes back as an error on its row; nothing is saved.
    retype(wait_for(browser, "#id_variants-1-knob_diversity_cap"), "500")
    browser.execute_script(
        "document.getElementById('id_variants-1-knob_diversity_cap').removeAttribute('max')"
    )
    submit(browser, "input[name=_continue]")
    row_error = wait_for(browser, "#variants-1 .errorlist")
    assert "50" in row_error.text
    assert not Experiment.objects.filter(key="e2e_split").exists()

    # Fixed and saved: the stored weights are normalised and shown in the editor.
    retype(wait_for(browser, "#id_variants-1-knob_diversity_cap"), "3")
    submit(browser, "input[name=_continue]")
    assert (
        "Stored weights (normalised to sum 1): control 0.7, treatment 0.3"
        in wait_for(browser, ".messagelist").text
    )
    experiment = Experiment.objects.get(key="e2e_split")
    assert experiment.variants == [
        {"name": "control", "weight": 0.7, "config": {}},
        {"name": "treatment", "weight": 0.3, "config": {"diversity_cap": 3}},
    ]
    weights = [wait_for(browser, f"#id_variants-{i}-weight").get_attribute("value") for i in (0, 1)]
    assert weights == ["0.7", "0.3"]


def test_an_active_experiment_keeps_its_rows_and_names(browser, live_server, staff_user):
    experiment = ActiveExperimentFactory(key="e2e_live")
    admin_login(browser, live_server, staff_user.username, PASSWORD)
    browser.get(f"{live_server.url}{CHANGELIST}{experiment.pk}/change/")

    name = wait_for(browser, "#id_variants-0-name")
    assert name.get_attribute("disabled") is not None
    assert not browser.find_elements(By.LINK_TEXT, "Add another variant")
    assert not browser.find_elements(By.CSS_SELECTOR, "a.inline-deletelink")
    retype(wait_for(browser, "#id_variants-0-weight"), "3")
    retype(wait_for(browser, "#id_variants-1-weight"), "1")
    assert segment_widths(browser) == [0.75, 0.25]
    submit(browser, "input[name=_continue]")
    assert "control 0.75, treatment 0.25" in wait_for(browser, ".messagelist").text

    experiment.refresh_from_db()
    assert [(v["name"], v["weight"]) for v in experiment.variants] == [
        ("control", 0.75),
        ("treatment", 0.25),
    ]


def test_a_scheduled_start_is_saved_and_shown_in_the_list(browser, live_server, staff_user):
    admin_login(browser, live_server, staff_user.username, PASSWORD)
    browser.get(f"{live_server.url}{CHANGELIST}add/")
    wait_for(browser, "#id_key").send_keys("e2e_later")
    start = timezone.localtime(timezone.now() + timedelta(days=2, hours=1)).replace(microsecond=0)
    field = wait_for(browser, "#id_started_at")
    browser.execute_script(
        "arguments[0].value = arguments[1]", field, start.strftime("%Y-%m-%dT%H:%M:%S")
    )
    submit(browser, "input[name=_save]")

    row = wait_for(browser, "#result_list").text
    assert "scheduled (starts in 2 days)" in row
    experiment = Experiment.objects.get(key="e2e_later")
    assert experiment.status == "draft" and experiment.started_at == start
