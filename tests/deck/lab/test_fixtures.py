import io
import json
from pathlib import Path

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from deck.models import CfReco, MediaItem, UserGenrePreference, UserSegment
from deck.services import deck_build
from telemetry.models import Impression
from tests.factories.users import UserFactory

SAMPLE = Path(__file__).parents[3] / "docs" / "fixtures" / "media_catalog.yaml"


@pytest.fixture(autouse=True)
def evidence_root(settings, tmp_path):
    """Evidence files go to a temporary directory, not var/ in the checkout."""
    settings.FIXTURE_EVIDENCE_ROOT = str(tmp_path / "evidence")


def load(path, *args):
    out = io.StringIO()
    call_command("load_fixture", str(path), *args, stdout=out)
    return out.getvalue()


def test_the_sample_fixture_loads_with_counts_per_segment(db):
    output = load(SAMPLE)

    assert "12 items, 4 users, 6 CF scores" in output
    assert "segment binge_watchers: 2 users" in output and "segment casual: 2 users" in output
    ana = get_user_model().objects.get(username="fixture_ana")
    segment = UserSegment.objects.get(user=ana)
    assert (segment.segment, segment.traits) == (
        "binge_watchers",
        {"country": "PT", "plan": "premium"},
    )
    assert UserGenrePreference.objects.filter(user=ana).count() == 2
    assert MediaItem.objects.get(external_id="media_catalog:m-002").genres == ["thriller", "scifi"]


def test_loading_twice_is_an_idempotent_upsert(db, tmp_path):
    load(SAMPLE)
    data = yaml.safe_load(SAMPLE.read_text())
    data["catalog"][0]["title"] = "Renamed"
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(data))

    load(changed, "--json")

    assert MediaItem.objects.filter(external_id__startswith="media_catalog:").count() == 12
    assert MediaItem.objects.get(external_id="media_catalog:m-001").title == "Renamed"
    assert CfReco.objects.count() == 6 and get_user_model().objects.count() == 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["users"][3].pop("segment"), "users[3].segment: required"),
        (lambda d: d["users"][1].update(segment="lurkers"), "users[1].segment"),
        (lambda d: d["catalog"][2].update(genres=[]), "catalog[2].genres"),
        (lambda d: d["cf_recos"][0].update(item="m-999"), "cf_recos[0].item"),
        (
            lambda d: d["segments"][0]["propensities"].update(like=1.5),
            "segments[0].propensities.like",
        ),
        (lambda d: d.update(name="Bad Name"), "name"),
        (lambda d: d.update(name="media_catalog\n"), "name"),
        (lambda d: d["users"][0].update(username="viewer\n"), "users[0].username"),
    ],
)
def test_a_bad_fixture_names_the_path_and_loads_nothing(db, tmp_path, change, message):
    data = yaml.safe_load(SAMPLE.read_text())
    change(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))

    with pytest.raises(CommandError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load(path)

    assert not MediaItem.objects.exists() and not get_user_model().objects.exists()


def test_reset_deletes_the_fixtures_events_users_and_items_first(db, app_client):
    load(SAMPLE)
    ana = get_user_model().objects.get(username="fixture_ana")
    deck_build(user=ana, limit=3, platform=None, app_version=None)
    assert Impression.objects.filter(user=ana).exists()

    output = load(SAMPLE, "--reset")

    assert "removed 0 outcomes, 3 impressions, 4 users, 12 items" in output
    assert not Impression.objects.filter(user_id=ana.pk).exists()
    assert get_user_model().objects.filter(username="fixture_ana").exists()  # loaded again


def test_an_unreadable_file_is_one_line(db, tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        load(tmp_path / "missing.yaml")


def write_fixture(tmp_path, change=None, name="changed.yaml"):
    data = yaml.safe_load(SAMPLE.read_text())
    if change:
        change(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("reset", [False, True], ids=["load", "load --reset"])
def test_a_fixture_listing_an_existing_superuser_is_refused_and_leaves_it_alone(
    db, tmp_path, reset
):
    admin = UserFactory(username="admin", email="root@example.com", is_staff=True)
    admin.is_superuser = True
    admin.save()
    path = write_fixture(
        tmp_path, lambda d: d["users"].append({"username": "admin", "segment": "casual"})
    )

    args = ["--reset"] if reset else []
    with pytest.raises(CommandError, match=r"users\[4\]\.username: 'admin' is an existing account"):
        load(path, *args)

    admin.refresh_from_db()
    assert (admin.username, admin.email, admin.is_superuser, admin.is_staff) == (
        "admin",
        "root@example.com",
        True,
        True,
    )
    assert admin.check_password("correct horse battery staple")
    assert admin.created_by_fixture is None
    assert not UserSegment.objects.filter(user=admin).exists()
    assert not UserGenrePreference.objects.filter(user=admin).exists()
    assert not MediaItem.objects.exists()  # nothing of the fixture was loaded either


def test_an_account_another_fixture_created_is_refused(db, tmp_path):
    load(write_fixture(tmp_path, lambda d: d.update(name="other_fixture"), name="other.yaml"))

    with pytest.raises(CommandError, match=r"users\[0\]\.username: 'fixture_ana'.*'media_catalog'"):
        load(SAMPLE)

    ana = get_user_model().objects.get(username="fixture_ana")
    assert ana.created_by_fixture == "other_fixture"
    assert UserSegment.objects.get(user=ana).fixture == "other_fixture"


def test_an_email_of_another_account_is_refused(db, tmp_path):
    UserFactory(username="real_ben", email="Ben@Example.com")

    with pytest.raises(CommandError, match=r"users\[1\]\.email: is already the email"):
        load(SAMPLE)

    assert list(get_user_model().objects.values_list("username", flat=True)) == ["real_ben"]


def test_reset_removes_only_what_the_fixture_created(db, tmp_path):
    load(SAMPLE)
    load(
        write_fixture(
            tmp_path,
            lambda d: d.update(
                name="other_fixture",
                users=[{"username": "other_zoe", "segment": "casual"}],
                catalog=[],
                cf_recos=[],
            ),
            name="other.yaml",
        )
    )
    bystander = UserFactory(username="bystander")
    superuser = UserFactory(username="boss", is_staff=True, is_superuser=True)
    served = deck_build(user=bystander, limit=3, platform=None, app_version=None)["items"]
    old_ana = get_user_model().objects.get(username="fixture_ana")

    output = load(SAMPLE, "--reset")

    assert "removed 0 outcomes, 0 impressions, 4 users, 9 items (kept 3 items" in output
    users = set(get_user_model().objects.values_list("username", flat=True))
    assert users == {
        "bystander",
        "boss",
        "other_zoe",
        "fixture_ana",
        "fixture_ben",
        "fixture_chen",
        "fixture_dara",
    }
    assert get_user_model().objects.get(pk=superuser.pk).is_superuser
    assert Impression.objects.filter(user=bystander).count() == len(served) == 3
    # Re-created, with the same id: a fixture's user ids derive from its name and the username.
    new_ana = get_user_model().objects.get(username="fixture_ana")
    assert new_ana.date_joined > old_ana.date_joined and new_ana.pk == old_ana.pk
    assert MediaItem.objects.filter(external_id__startswith="media_catalog:").count() == 12
