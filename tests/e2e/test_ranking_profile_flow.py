"""Ranking profiles in a real browser: add a profile bound to a segment in the admin, and the
very next deck of a user in that segment names it and its knobs."""

import pytest

from deck.models import RankingProfile, UserSegment
from recsys_experiments.lib.knobs import DEFAULT_KNOBS, knobs_hash
from tests.e2e.chromium import admin_login, wait_for, wait_for_page_load
from tests.e2e.test_experiment_flow import PASSWORD, api_post
from tests.factories.catalog import MediaItemFactory
from tests.factories.users import UserFactory

pytestmark = pytest.mark.e2e


def test_a_profile_added_in_the_admin_ranks_the_next_deck(browser, live_server, staff_user):
    MediaItemFactory.create_batch(10)
    viewer = UserFactory(username="e2e_cold")
    UserSegment.objects.create(user=viewer, fixture="acme", segment="cold_start")
    admin_login(browser, live_server, staff_user.username, PASSWORD)

    browser.get(f"{live_server.url}/admin/deck/rankingprofile/add/")
    wait_for(browser, "#id_name").send_keys("cold_boost")
    wait_for(browser, "#id_knob_popularity_weight").send_keys("0.9")
    wait_for(browser, "#id_bindings_lines").send_keys("segment: cold_start")
    wait_for(browser, "input[name=_save]").click()
    wait_for_page_load(browser)
    listed = wait_for(browser, "#result_list").text
    assert "cold_boost" in listed and "segment: cold_start" in listed

    token = api_post(
        live_server.url, "/api/v1/auth/token", {"username": "e2e_cold", "password": PASSWORD}
    )["token"]
    deck = api_post(live_server.url, "/api/v1/deck", {"limit": 3}, token)
    profile = RankingProfile.objects.get(name="cold_boost")
    assert deck["ranking"] == {
        "profile": "cold_boost",
        "profile_id": profile.pk,
        "version": 1,
        "knobs_hash": knobs_hash({**DEFAULT_KNOBS, "popularity_weight": 0.9}),
    }
