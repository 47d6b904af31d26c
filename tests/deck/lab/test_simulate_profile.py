"""`simulate --profile NAME`: the run serves decks with a live ranking profile copied into its
scratch database as the default, records it in the bundle, and a reproduction from the bundle
uses the recorded profile even after the live one changed."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from deck.models import RankingProfile
from deck.profiles import ranking_profile_save
from recsys_experiments.lib.knobs import DEFAULT_KNOBS, knobs_hash

BOLD_KNOBS = {"cf_weight": 0.1, "popularity_weight": 0.7, "diversity_cap": 2}


@pytest.fixture
def bold(db):
    return ranking_profile_save(
        profile=None, name="bold", knobs=BOLD_KNOBS, bindings=[], is_default=False, actor=None
    )


def simulate(*args) -> dict:
    out = io.StringIO()
    call_command("simulate", *args, "--json", stdout=out, stderr=io.StringIO())
    return json.loads(out.getvalue())


def served(run) -> set[tuple]:
    return {
        (row["variant"], row["profile"], row["knobs_hash"]) for row in run["results"]["ranking"]
    }


def test_a_run_serves_the_chosen_profile_and_its_bundle_replays_it(bold, tmp_path):
    run = simulate(
        "--experiment", "profile_sim", "--users", "20", "--seed", "4", "--profile", "bold",
        "--report-dir", str(tmp_path),
    )  # fmt: skip

    merged = knobs_hash({**DEFAULT_KNOBS, **BOLD_KNOBS})
    assert served(run) == {("control", "bold", merged), ("treatment", "bold", merged)}
    bundle = tmp_path / run["run_id"]
    recorded = json.loads((bundle / "profile.json").read_text())
    assert recorded["name"] == "bold" and recorded["knobs"] == BOLD_KNOBS
    assert json.loads((bundle / "arguments.json").read_text())["profile"] == "bold"
    assert "profile bold" in (bundle / "summary.md").read_text()

    # The live profile changes (and stops existing); the bundle decides the reproduction.
    RankingProfile.objects.filter(name="bold").delete()
    again = simulate("--from-bundle", str(bundle))
    assert served(again) == served(run)
    assert again["results"]["metrics"] == run["results"]["metrics"]
    assert not RankingProfile.objects.filter(name="bold").exists()


def test_without_a_profile_the_live_default_is_copied(db):
    RankingProfile.objects.filter(is_default=True).update(knobs={"cf_weight": 0.9})
    run = simulate("--experiment", "profile_sim", "--users", "6", "--seed", "4")
    assert run["profile"]["name"] == "default" and run["profile"]["knobs"] == {"cf_weight": 0.9}
    hashes = {row["knobs_hash"] for row in run["results"]["ranking"]}
    assert hashes == {knobs_hash({**DEFAULT_KNOBS, "cf_weight": 0.9})}


def test_an_unknown_profile_is_one_line(db):
    with pytest.raises(CommandError, match=r"no ranking profile named nope \(profiles: default\)"):
        simulate("--experiment", "profile_sim", "--users", "6", "--profile", "nope")
