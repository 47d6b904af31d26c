"""Ranking profiles: precedence through the real deck function, provenance on impressions,
versions and history, validation, bindings held by one profile, the end user's rights."""

import json

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from deck.models import RankingProfile, RankingProfileVersion, UserSegment
from deck.profiles import (
    ranking_profile_definition,
    ranking_profile_delete,
    ranking_profile_install,
    ranking_profile_save,
)
from deck.services import deck_build
from recsys_experiments.db_roles import END_USER_ROLE, acting_as
from recsys_experiments.lib.errors import IllegalTransition, InvalidInput
from recsys_experiments.lib.knobs import DEFAULT_KNOBS, knobs_hash
from telemetry.models import Impression
from tests.factories.experiments import ActiveExperimentFactory
from tests.factories.users import UserFactory


def sql_hash(knobs: dict) -> str:
    with connection.cursor() as cursor:
        cursor.execute("select rec_knobs_hash(%s::jsonb)", [json.dumps(knobs)])
        return cursor.fetchone()[0]


def deck_for(user, limit=3):
    """One deck built by media_swipe_deck_v1 as the user (RLS on), as the API does."""
    with acting_as(END_USER_ROLE, user.pk):
        return deck_build(user=user, limit=limit, platform="ios", app_version="3.0")


def in_segment(segment="cold_start", fixture="acme"):
    user = UserFactory()
    UserSegment.objects.create(user=user, fixture=fixture, segment=segment)
    return user


def default_profile():
    return RankingProfile.objects.get(is_default=True)


def save(name, knobs, bindings=(), **kwargs):
    return ranking_profile_save(name=name, knobs=knobs, bindings=list(bindings), **kwargs)


def test_the_migration_installs_a_default_profile_with_the_built_in_knobs(db):
    profile = default_profile()

    assert (profile.name, profile.version, profile.knobs) == ("default", 1, DEFAULT_KNOBS)
    assert list(profile.versions.values_list("version", flat=True)) == [1]


@pytest.mark.parametrize(
    "knobs",
    [
        DEFAULT_KNOBS,
        {"cf_weight": 0.8, "diversity_cap": 2},
        {"freshness_half_life_years": 2.5},
        {"cf_weight": 1e-05, "genre_weight": 10, "popularity_weight": 0.1 + 0.2},
        {},
    ],
)
def test_the_python_knobs_hash_is_the_sql_one(db, knobs):
    assert knobs_hash(knobs) == sql_hash(knobs) == sql_hash(dict(reversed(knobs.items())))


# (namespace profile knobs, segment profile knobs, variant config) -> expected final knobs
# over the default profile's {"cf_weight": 0.5, "candidate_pool": 200}, and which profile
# the impressions name.
PRECEDENCE = {
    "default only": (None, None, None, {"cf_weight": 0.5, "candidate_pool": 200}, "default"),
    "namespace bound": (
        {"cf_weight": 0.6, "genre_weight": 0.1},
        None,
        None,
        {"cf_weight": 0.6, "genre_weight": 0.1, "candidate_pool": 200},
        "ns",
    ),
    "segment bound": (
        None,
        {"cf_weight": 0.7},
        None,
        {"cf_weight": 0.7, "candidate_pool": 200},
        "seg",
    ),
    "both: segment wins": (
        {"cf_weight": 0.6, "genre_weight": 0.1},
        {"cf_weight": 0.7},
        None,
        {"cf_weight": 0.7, "genre_weight": 0.1, "candidate_pool": 200},
        "seg",
    ),
    "variant config on top": (
        {"cf_weight": 0.6, "genre_weight": 0.1},
        {"cf_weight": 0.7},
        {"cf_weight": 0.9, "diversity_cap": 2},
        {"cf_weight": 0.9, "genre_weight": 0.1, "candidate_pool": 200, "diversity_cap": 2},
        "seg",
    ),
}


@pytest.mark.parametrize("case", PRECEDENCE)
def test_precedence_default_then_namespace_then_segment_then_variant(db, catalog, case):
    namespace_knobs, segment_knobs, config, expected, applied = PRECEDENCE[case]
    default = default_profile()
    ranking_profile_save(
        profile=default,
        name="default",
        knobs={"cf_weight": 0.5, "candidate_pool": 200},
        bindings=[],
        is_default=True,
    )
    if namespace_knobs:
        save("ns", namespace_knobs, [{"namespace": "acme"}])
    if segment_knobs:
        save("seg", segment_knobs, [{"segment": "cold_start"}])
    if config:
        ActiveExperimentFactory(
            key="blend",
            variants=[
                {"name": "a", "weight": 0.5, "config": config},
                {"name": "b", "weight": 0.5, "config": config},
            ],
        )
    user = in_segment("cold_start", "acme")

    deck = deck_for(user)

    profile = RankingProfile.objects.get(name=applied)
    final = {**DEFAULT_KNOBS, **expected}
    assert deck["ranking"] == {
        "profile": applied,
        "profile_id": profile.pk,
        "version": profile.version,
        "knobs_hash": sql_hash(final),
    }
    assert deck["ranking"]["knobs_hash"] == knobs_hash(final)
    contexts = Impression.objects.filter(rec_request_id=deck["rec_request_id"]).values_list(
        "request_context", flat=True
    )
    assert [context["ranking"] for context in contexts] == [deck["ranking"]] * 3


def test_a_user_outside_any_binding_gets_the_default_and_another_segment_is_untouched(db, catalog):
    save("seg", {"cf_weight": 0.7}, [{"segment": "cold_start"}])
    other = in_segment("heavy", "acme")
    unsegmented = UserFactory()

    for user in (other, unsegmented):
        ranking = deck_for(user)["ranking"]
        assert (ranking["profile"], ranking["knobs_hash"]) == ("default", sql_hash(DEFAULT_KNOBS))


def test_without_any_profile_the_deck_ranks_with_the_built_in_knobs(db, catalog):
    RankingProfile.objects.all().delete()

    ranking = deck_for(UserFactory())["ranking"]

    assert ranking == {
        "profile": None,
        "profile_id": None,
        "version": None,
        "knobs_hash": sql_hash(DEFAULT_KNOBS),
    }


def test_switching_a_binding_changes_the_very_next_deck(db, catalog):
    user = in_segment("cold_start")
    first = save("first", {"cf_weight": 0.7}, [{"segment": "cold_start"}])
    second = save("second", {"cf_weight": 0.1})
    before = deck_for(user)["ranking"]

    ranking_profile_save(profile=first, name="first", knobs=first.knobs, bindings=[])
    ranking_profile_save(
        profile=second, name="second", knobs=second.knobs, bindings=[{"segment": "cold_start"}]
    )
    after = deck_for(user)["ranking"]

    assert before["profile"] == "first"
    assert (after["profile"], after["version"]) == ("second", 2)
    assert after["knobs_hash"] == sql_hash({**DEFAULT_KNOBS, "cf_weight": 0.1})
    assert after["knobs_hash"] != before["knobs_hash"]


def test_editing_the_default_profile_changes_the_next_deck(db, catalog):
    user = UserFactory()
    default = default_profile()
    ranking_profile_save(
        profile=default, name="default", knobs={"diversity_cap": 1}, bindings=[], is_default=True
    )

    ranking = deck_for(user)["ranking"]

    assert ranking["version"] == 2
    assert ranking["knobs_hash"] == sql_hash({**DEFAULT_KNOBS, "diversity_cap": 1})


def test_every_change_is_a_new_version_with_a_history_row_and_no_change_keeps_it(db):
    editor = UserFactory(is_staff=True)
    profile = save("tuned", {"cf_weight": 0.6}, actor=editor)
    profile = ranking_profile_save(
        profile=profile,
        name="tuned",
        knobs={"cf_weight": 0.65},
        bindings=[{"namespace": "acme"}],
        actor=editor,
    )
    unchanged = ranking_profile_save(
        profile=profile, name="tuned", knobs={"cf_weight": 0.65}, bindings=[{"namespace": "acme"}]
    )

    assert (profile.version, unchanged.version, unchanged.updated_by) == (2, 2, editor)
    history = RankingProfileVersion.objects.filter(profile=profile).order_by("version")
    assert [(h.version, h.knobs, h.bindings, h.changed_by_id) for h in history] == [
        (1, {"cf_weight": 0.6}, [], editor.pk),
        (2, {"cf_weight": 0.65}, [{"namespace": "acme"}], editor.pk),
    ]


def test_making_a_profile_the_default_takes_the_flag_off_the_old_one(db):
    old = default_profile()

    new = save("new_default", {"cf_weight": 0.6}, is_default=True)

    old.refresh_from_db()
    assert new.is_default and not old.is_default
    assert old.version == 2
    assert RankingProfile.objects.filter(is_default=True).count() == 1


def test_the_database_refuses_a_second_default_and_a_shared_binding(db):
    save("holder", {}, [{"segment": "cold_start"}])
    with pytest.raises(IntegrityError), transaction.atomic():
        RankingProfile.objects.create(name="second_default", is_default=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        RankingProfile.objects.create(name="thief", bindings=[{"segment": "cold_start"}])
    with pytest.raises(DatabaseError, match="binding must be"), transaction.atomic():
        RankingProfile.objects.create(name="odd", bindings=[{"tenant": "x"}])


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"knobs": {"cf_wieght": 0.5}}, "knobs.cf_wieght"),
        ({"knobs": {"diversity_cap": 2.5}}, "knobs.diversity_cap"),
        ({"knobs": {"cf_weight": float("nan")}}, "knobs.cf_weight"),
        ({"knobs": {"cf_weight": "high"}}, "knobs.cf_weight"),
        ({"knobs": {"cf_weight": {"deep": [1]}}}, "knobs.cf_weight"),
        ({"knobs": {"bad\x00name": 1}}, "knobs"),
        ({"knobs": [0.4]}, "knobs"),
        ({"bindings": {"segment": "x"}}, "bindings"),
        ({"bindings": [{"tenant": "x"}]}, "bindings[0]"),
        ({"bindings": [{"segment": "x", "namespace": "y"}]}, "bindings[0]"),
        ({"bindings": ["cold_start"]}, "bindings[0]"),
        ({"bindings": [{"segment": ""}]}, "bindings[0].segment"),
        ({"bindings": [{"segment": 7}]}, "bindings[0].segment"),
        ({"bindings": [{"segment": "a\x00b"}]}, "bindings[0].segment"),
        ({"bindings": [{"segment": "x" * 201}]}, "bindings[0].segment"),
        ({"bindings": [{"segment": "x"}, {"segment": "x"}]}, "bindings[1]"),
        ({"name": "Not A Slug"}, "name"),
        ({"name": "a\x00"}, "name"),
        ({"name": "default"}, "name"),
        ({"name": None}, "name"),
    ],
)
def test_bad_profiles_are_rejected_naming_the_field(db, data, field):
    values = {"name": "tuned", "knobs": {}, "bindings": [], **data}

    with pytest.raises(InvalidInput) as raised:
        ranking_profile_save(**values)

    assert field in raised.value.errors
    assert not RankingProfile.objects.filter(is_default=False).exists()


def test_a_binding_held_by_another_profile_is_rejected_naming_both(db):
    save("holder", {}, [{"namespace": "acme"}])

    with pytest.raises(InvalidInput) as raised:
        save("thief", {}, [{"segment": "s"}, {"namespace": "acme"}])

    assert raised.value.errors == {
        "bindings[1]": ["namespace acme is already bound to profile 'holder'"]
    }


def test_the_default_profile_cannot_be_deleted_and_history_outlives_a_deleted_profile(db):
    with pytest.raises(IllegalTransition):
        ranking_profile_delete(profile=default_profile())
    gone = save("gone", {"cf_weight": 0.6}, [{"segment": "s"}])

    ranking_profile_delete(profile=gone)

    assert list(
        RankingProfileVersion.objects.filter(name="gone").values_list("profile", "version")
    ) == [(None, 1)]
    assert save("again", {}, [{"segment": "s"}]).bindings == [{"segment": "s"}]


def test_definition_and_install_copy_a_profile(db):
    source = save("tuned", {"cf_weight": 0.6}, [{"segment": "s"}])
    definition = ranking_profile_definition(source)
    source_id = source.pk
    source.delete()

    installed = ranking_profile_install(definition, as_default=True)

    assert definition == {
        "name": "tuned",
        "id": source_id,
        "version": 1,
        "knobs": {"cf_weight": 0.6},
        "bindings": [{"segment": "s"}],
        "is_default": False,
    }
    assert (installed.name, installed.knobs, installed.bindings, installed.is_default) == (
        "tuned",
        {"cf_weight": 0.6},
        [{"segment": "s"}],
        True,
    )
    assert not RankingProfile.objects.get(name="default").is_default
    again = ranking_profile_install({**definition, "knobs": {"cf_weight": 0.7}}, as_default=False)
    assert (again.pk, again.version, again.is_default) == (installed.pk, 2, True)


@pytest.mark.parametrize(
    "statement",
    [
        "insert into rec_ranking_profiles (name, knobs, bindings, is_default, version)"
        " values ('mine', '{}', '[]', false, 1)",
        "update rec_ranking_profiles set knobs = '{\"cf_weight\": 9}'",
        "delete from rec_ranking_profiles",
        "insert into rec_ranking_profile_bindings (profile_id, kind, value)"
        " select id, 'segment', 'x' from rec_ranking_profiles",
        "select * from rec_ranking_profile_versions",
        "select traits from recsys_user_segments",
    ],
)
def test_the_end_user_cannot_write_profiles_nor_read_their_history(db, statement):
    user = in_segment()
    with (
        pytest.raises(DatabaseError, match="permission denied"),
        transaction.atomic(),
        acting_as(END_USER_ROLE, user.pk),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ("tuned", "definition"),
        ({"knobs": {}}, "name"),
        ({"name": "tuned"}, "knobs"),
        ({"name": "tuned", "knobs": {}, "bindings": [{"segment": "s"}] * 201}, "bindings"),
        ({"name": "x" * 10_000, "knobs": {}}, "name"),
    ],
)
def test_install_rejects_a_bad_definition_naming_the_field(db, definition, field):
    with pytest.raises(InvalidInput) as raised:
        ranking_profile_install(definition, as_default=False)

    assert field in raised.value.errors


def test_the_end_user_reads_profiles_and_only_their_own_segment(db):
    user = in_segment("mine")
    in_segment("theirs")

    with acting_as(END_USER_ROLE, user.pk), connection.cursor() as cursor:
        cursor.execute("select segment from recsys_user_segments")
        segments = cursor.fetchall()
        cursor.execute("select name from rec_ranking_profiles")
        profiles = cursor.fetchall()

    assert segments == [("mine",)]
    assert profiles == [("default",)]
