"""The ranking profile admin: per-knob fields (blank inherits), bindings one per line, errors
at their field, the default undeletable, the history read-only."""

import pytest

from deck import admin as deck_admin
from deck.models import RankingProfile, RankingProfileVersion
from deck.profiles import ranking_profile_save
from recsys_experiments.lib.knobs import KNOBS

ADD = "/admin/deck/rankingprofile/add/"


def change_url(profile):
    return f"/admin/deck/rankingprofile/{profile.pk}/change/"


def form(**fields):
    data = {"name": "tuned", "bindings_lines": "", **{f"knob_{name}": "" for name in KNOBS}}
    data.update(
        {
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
            "versions-MIN_NUM_FORMS": "0",
            "versions-MAX_NUM_FORMS": "0",
        }
    )
    data.update(fields)
    return data


def test_adding_a_profile_stores_only_the_knobs_filled_in(admin, staff_user):
    response = admin.post(
        ADD,
        form(knob_cf_weight="0.6", knob_diversity_cap="2", bindings_lines="segment: cold_start\n"),
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    profile = RankingProfile.objects.get(name="tuned")
    assert (profile.knobs, profile.bindings, profile.version, profile.updated_by) == (
        {"cf_weight": 0.6, "diversity_cap": 2},
        [{"segment": "cold_start"}],
        1,
        staff_user,
    )


def test_changing_a_profile_makes_a_version_shown_in_its_history(admin):
    profile = ranking_profile_save(name="tuned", knobs={"cf_weight": 0.6}, bindings=[])

    page = admin.get(change_url(profile)).content.decode()
    assert 'name="knob_cf_weight" value="0.6"' in page
    response = admin.post(
        change_url(profile), form(knob_cf_weight="", knob_genre_weight="0.5", is_default="")
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    profile.refresh_from_db()
    assert (profile.knobs, profile.version) == ({"genre_weight": 0.5}, 2)
    page = admin.get(change_url(profile)).content.decode()
    assert "History (every saved version)" in page
    assert "{&quot;genre_weight&quot;: 0.5}" in page and "{&quot;cf_weight&quot;: 0.6}" in page
    assert "versions-0-version" not in page  # read-only: no inputs
    assert RankingProfileVersion.objects.filter(profile=profile).count() == 2


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"knob_cf_weight": "11"}, "knob_cf_weight", "must be between 0 and 10"),
        ({"knob_diversity_cap": "2.5"}, "knob_diversity_cap", "Enter a whole number"),
        ({"knob_cf_weight": "nan"}, "knob_cf_weight", "Enter a number"),
        ({"bindings_lines": "tenant: x"}, "bindings_lines", "line 1: write"),
        ({"bindings_lines": "segment: a\n\nsegment: a"}, "bindings_lines", "line 3: repeats"),
        ({"bindings_lines": "namespace: acme"}, "bindings_lines", "already bound to profile"),
        ({"bindings_lines": "segment: a\x00"}, "bindings_lines", "Null characters"),
        ({"name": "Bad-Name"}, "name", "lowercase"),
        ({"name": "bad name"}, "name", "slug"),
    ],
)
def test_bad_input_is_shown_at_its_field_and_saves_nothing(admin, fields, field, message):
    ranking_profile_save(name="holder", knobs={}, bindings=[{"namespace": "acme"}])

    response = admin.post(ADD, form(**fields))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors[field]), errors
    assert not RankingProfile.objects.filter(name__in=["tuned", "Bad-Name", "bad name"]).exists()


def test_the_default_profile_cannot_be_deleted(admin):
    default = RankingProfile.objects.get(is_default=True)

    page = admin.get(change_url(default)).content.decode()
    response = admin.post(f"/admin/deck/rankingprofile/{default.pk}/delete/", {"post": "yes"})

    assert "deletelink" not in page
    assert response.status_code == 403
    assert RankingProfile.objects.filter(pk=default.pk).exists()


def test_another_profile_can_be_deleted_and_its_history_stays(admin):
    profile = ranking_profile_save(name="gone", knobs={}, bindings=[])

    response = admin.post(f"/admin/deck/rankingprofile/{profile.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not RankingProfile.objects.filter(name="gone").exists()
    assert RankingProfileVersion.objects.filter(name="gone").count() == 1


def test_the_changelist_shows_bindings_and_overrides(admin):
    ranking_profile_save(name="tuned", knobs={"cf_weight": 0.6}, bindings=[{"segment": "s"}])

    page = admin.get("/admin/deck/rankingprofile/").content.decode()

    assert "segment: s" in page and "cf_weight=0.6" in page


def test_a_binding_taken_between_the_check_and_the_save_is_reported_not_a_server_error(
    admin, monkeypatch
):
    """The form's check is skipped, as when another save took the binding meanwhile."""
    monkeypatch.setattr(
        deck_admin.RankingProfileForm,
        "clean",
        lambda form: {**form.cleaned_data, "knobs": {}, "bindings": [{"segment": "s"}]},
    )
    ranking_profile_save(name="holder", knobs={}, bindings=[{"segment": "s"}])

    response = admin.post(ADD, form(), follow=True)

    assert response.status_code == 200
    assert (
        "Not saved: bindings[0]: segment s is already bound to profile" in response.content.decode()
    )
    assert not RankingProfile.objects.filter(name="tuned").exists()
