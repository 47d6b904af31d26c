"""The deck's SQL shape at catalogue scale (deck.v4.sql, deck.v5.sql): each catalogue source
walks an index in its own order and stops after its pool, whatever the catalogue size or the
number of titles the user already acted on; a user with a long history probes the titles walked
instead of reading every outcome; the active experiments are read once per deck. Plans are read
with auto_explain (JSON, actual row counts, no timings) from the statements inside
media_swipe_deck_v1 itself."""

import json
import re

import pytest
from django.db import DatabaseError, connection

from deck.models import CfReco, MediaItem, UserGenrePreference
from recsys_experiments.db_roles import END_USER_ROLE, acting_as
from recsys_experiments.lib.knobs import DEFAULT_KNOBS
from tests.factories.experiments import ActiveExperimentFactory
from tests.factories.users import UserFactory
from tests.helpers import skip_outside_ci

CATALOGUE = 30_000
GENRES = [f"genre{n}" for n in range(12)]
POOL = DEFAULT_KNOBS["candidate_pool"]
# deck.v5.sql: a user with at least this many outcome rows probes the titles walked; each
# catalogue walk probes at most WALK titles before the deck hashes after all.
PROBE_ABOVE = 10 * POOL
WALK = 4 * POOL
OUTCOME_RELATION = re.compile(r"rec_outcomes(_p\d{6}|_default)?")


def _load_catalogue(size: int) -> None:
    """`size` titles, two genres each, distinct popularities, one year in 13 unknown."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            insert into media_items (title, genres, year, popularity, created_at)
            select 'title ' || n,
                   array[(%(genres)s::text[])[1 + n %% 12],
                         (%(genres)s::text[])[1 + (n / 12 + 1) %% 12]],
                   case when n %% 13 = 0 then null else 1950 + (n * 7) %% 75 end,
                   (n * 7919) %% %(size)s + 1, now()
            from generate_series(1, %(size)s) as n;
            analyze media_items;
            analyze media_item_genres;
            """,
            {"genres": GENRES, "size": size},
        )


def _act_on_most_popular(user, count: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            insert into rec_outcomes
                (user_id, rec_request_id, media_item_id, outcome_type, event_id)
            select %s, gen_random_uuid(), m.id, 'like', 'e' || m.id
            from media_items as m order by m.popularity desc limit %s;
            analyze rec_outcomes;
            """,
            [user.pk, count],
        )


def _act_on_every_other_title(user, rows: int) -> None:
    """`rows` outcome rows, like / dislike / rating in turn, on every other title by id: a
    long history spread over the whole catalogue (the bench's heavy user)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            insert into rec_outcomes
                (user_id, rec_request_id, media_item_id, outcome_type, value, event_id)
            select %(user)s, gen_random_uuid(), m.id,
                   (array['like', 'dislike', 'rating'])[1 + g %% 3],
                   case when g %% 3 = 2 then 4 end, 'h' || g
            from generate_series(0, %(rows)s - 1) as g
            join media_items as m
              on m.id = (select min(id) from media_items) + 2 * (g %% (%(size)s / 2));
            analyze rec_outcomes;
            """,
            {"user": user.pk, "rows": rows, "size": CATALOGUE},
        )


def _deck_plans(user, *, as_end_user: bool = False) -> tuple[dict, list[dict]]:
    """The deck and the JSON plans of every statement it ran (auto_explain, nested), as the
    test's role or as the end-user role (RLS on, as the API runs it)."""
    plans: list[dict] = []
    raw = connection.connection

    def keep(diagnostic) -> None:
        text = diagnostic.message_primary or ""
        if text.startswith("duration:") and "{" in text:
            plans.append(json.loads(text[text.index("{") :]))

    with connection.cursor() as cursor:
        try:
            cursor.execute("load 'auto_explain'")
        except DatabaseError as error:  # the plugin needs a privileged role
            skip_outside_ci(f"auto_explain cannot be loaded here: {error}")
        cursor.execute(
            """
            set local auto_explain.log_min_duration = 0;
            set local auto_explain.log_analyze = on;
            set local auto_explain.log_timing = off;
            set local auto_explain.log_nested_statements = on;
            set local auto_explain.log_format = json;
            set local auto_explain.log_level = notice;
            set local client_min_messages = notice;
            """
        )
        raw.add_notice_handler(keep)
        try:
            if as_end_user:
                with acting_as(END_USER_ROLE, user.pk):
                    cursor.execute("select media_swipe_deck_v1(%s, 20, 'ios', '1.0')", [user.pk])
                    deck = cursor.fetchone()[0]
            else:
                cursor.execute("select media_swipe_deck_v1(%s, 20, 'ios', '1.0')", [user.pk])
                deck = cursor.fetchone()[0]
        finally:
            raw.remove_notice_handler(keep)
            cursor.execute("set local auto_explain.log_min_duration = -1")
    return (json.loads(deck) if isinstance(deck, str) else deck), plans


def _nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def _all_nodes(plans: list[dict]) -> list[dict]:
    return [node for plan in plans for node in _nodes(plan["Plan"])]


def _rows_read_matching(nodes: list[dict], pattern: re.Pattern) -> int:
    return sum(
        n.get("Actual Rows", 0) * n.get("Actual Loops", 1)
        for n in nodes
        if pattern.fullmatch(n.get("Relation Name", ""))
    )


def _rows_read(nodes: list[dict], relation: str) -> int:
    return sum(
        n.get("Actual Rows", 0) * n.get("Actual Loops", 1)
        for n in nodes
        if n.get("Relation Name") == relation
    )


@pytest.fixture
def big_catalogue(db):
    _load_catalogue(CATALOGUE)


@pytest.fixture
def reader(big_catalogue):
    user = UserFactory()
    for weight, genre in enumerate(GENRES[:3], start=1):
        UserGenrePreference.objects.create(user=user, genre=genre, weight=weight)
    items = list(MediaItem.objects.order_by("id").values_list("id", flat=True)[:: CATALOGUE // 50])
    CfReco.objects.bulk_create(
        CfReco(user=user, media_item_id=item, score=index / 50) for index, item in enumerate(items)
    )
    return user


def test_catalogue_sources_walk_their_indexes_and_never_sort_the_catalogue(reader):
    deck, plans = _deck_plans(reader)
    nodes = _all_nodes(plans)

    assert len(deck["items"]) == 20
    walked = {n.get("Index Name") for n in nodes if n["Node Type"].startswith("Index")}
    assert {
        "idx_media_items_year_newest",
        "idx_media_items_popularity_id",
        "idx_media_item_genres_top",
    } <= walked
    seq_scanned = {n.get("Relation Name") for n in nodes if n["Node Type"] == "Seq Scan"}
    assert not seq_scanned & {"media_items", "media_item_genres"}
    # Every sort is over candidates (a few pools), never over the catalogue.
    sorts = ("Sort", "Incremental Sort")
    sorted_rows = [n["Actual Rows"] for n in nodes if n["Node Type"] in sorts]
    assert max(sorted_rows) < 4 * POOL < CATALOGUE
    # Each source stops after its pool: 3 genre walks + popularity + newest, and the
    # candidates read by primary key, are a small fraction of the catalogue.
    assert _rows_read(nodes, "media_items") + _rows_read(nodes, "media_item_genres") < 12 * POOL


def _outcome_nodes(nodes: list[dict]) -> list[dict]:
    return [n for n in nodes if OUTCOME_RELATION.fullmatch(n.get("Relation Name", ""))]


def _assert_unseen(user, deck: dict) -> None:
    served = {item["media_item_id"] for item in deck["items"]}
    assert len(served) == 20
    with connection.cursor() as cursor:
        cursor.execute(
            "select count(*) from rec_outcomes where user_id = %s and media_item_id = any(%s)"
            " and outcome_type <> 'detail_open'",
            [user.pk, list(served)],
        )
        assert cursor.fetchone()[0] == 0


def test_a_long_history_costs_the_titles_walked_not_the_outcomes(reader):
    rows = 40_000  # more than 13 per walked title: v4 read all of them (one hash per source)
    _act_on_every_other_title(reader, rows)

    deck, plans = _deck_plans(reader, as_end_user=True)
    nodes = _all_nodes(plans)

    _assert_unseen(reader, deck)
    # The acted titles are never read whole: no scan of the "acted" CTE runs ...
    assert all(n["Actual Loops"] == 0 for n in nodes if n.get("CTE Name") == "acted")
    # ... the outcome rows read are the count that chose probing (at most PROBE_ABOVE index
    # entries) and the probes' hits (at most one per title walked: CF, 3 genres, popularity,
    # newest, each stopping after its pool of unseen titles, about 2 pools here).
    read = _rows_read_matching(nodes, OUTCOME_RELATION)
    assert read <= PROBE_ABOVE + 6 * 2 * POOL < rows / 3, read
    # Each probe is an index lookup of (user_id, media_item_id), one per title walked.
    probes = [n for n in _outcome_nodes(nodes) if n["Actual Loops"] > 1]
    assert probes
    assert {n.get("Index Name", "").rsplit("_", 1)[0] for n in probes if "Index Name" in n} == {
        "idx_rec_outcomes_user_item"
    }
    assert max(n["Actual Loops"] for n in probes) <= 6 * WALK
    assert _rows_read(nodes, "media_items") + _rows_read(nodes, "media_item_genres") < 24 * POOL


def test_a_few_outcomes_are_hashed_once(reader):
    _act_on_every_other_title(reader, PROBE_ABOVE - 1)

    deck, plans = _deck_plans(reader, as_end_user=True)
    nodes = _all_nodes(plans)

    _assert_unseen(reader, deck)
    # Below the threshold the user's outcomes are read once (one scan of each partition, none
    # repeated) and each source checks a hash of them: no probe per walked title.
    outcome_scans = [n for n in _outcome_nodes(nodes) if n["Actual Loops"] > 0]
    scanned = [n["Relation Name"] for n in outcome_scans]
    assert all(n["Actual Loops"] == 1 for n in outcome_scans), scanned
    acted_scans = [n for n in nodes if n.get("CTE Name") == "acted"]
    assert acted_scans
    assert all(n["Actual Loops"] <= 1 for n in acted_scans)
    assert any(n["Actual Loops"] == 1 for n in acted_scans)


def test_a_user_who_acted_on_the_top_titles_hashes_after_a_bounded_walk(reader):
    acted = 5_000
    _act_on_most_popular(reader, acted)

    deck, plans = _deck_plans(reader)
    nodes = _all_nodes(plans)

    _assert_unseen(reader, deck)
    # Probing first: the popularity walk keeps nothing within its budget (the user acted on
    # the 5,000 most popular titles), so the candidates are taken again by hashing: the
    # acted titles are read once, each walk skips them through the hash.
    acted_scans = [n for n in nodes if n.get("CTE Name") == "acted"]
    assert any(n["Actual Loops"] == 1 for n in acted_scans)
    assert all(n["Actual Loops"] <= 1 for n in acted_scans)
    probes = [n for n in _outcome_nodes(nodes) if n["Actual Loops"] > 1]
    assert probes and max(n["Actual Loops"] for n in probes) <= 6 * WALK
    # The popularity walk skips the acted titles at the top (at most `acted` + its pool),
    # after at most one budget per walk of probing; nothing reads the whole catalogue.
    assert _rows_read(nodes, "media_items") < acted + 6 * WALK + 12 * POOL < CATALOGUE


def test_the_active_experiments_are_read_once_per_deck(reader):
    for n in range(12):
        ActiveExperimentFactory(key=f"plan_experiment_{n:02d}")
    _deck_plans(reader)  # first deck: assigns and stores the twelve variants

    deck, plans = _deck_plans(reader)

    assert len(deck["experiments"]) == 12
    reads = [
        p
        for p in plans
        if any(n.get("Relation Name") == "rec_experiments" for n in _nodes(p["Plan"]))
    ]
    assert len(reads) == 1


def _genre_rows() -> set[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("select genre, media_item_id, popularity from media_item_genres")
        return set(cursor.fetchall())


def test_the_per_genre_table_follows_the_catalogue(db):
    drama = MediaItem.objects.create(title="a", genres=["drama", "comedy", "drama"], popularity=3)
    other = MediaItem.objects.create(title="b", genres=[], popularity=9)
    assert _genre_rows() == {("drama", drama.pk, 3.0), ("comedy", drama.pk, 3.0)}

    MediaItem.objects.filter(pk=drama.pk).update(genres=["horror"], popularity=5)
    MediaItem.objects.filter(pk=other.pk).update(genres=["horror"])
    assert _genre_rows() == {("horror", drama.pk, 5.0), ("horror", other.pk, 9.0)}

    MediaItem.objects.filter(pk=drama.pk).delete()
    assert _genre_rows() == {("horror", other.pk, 9.0)}
    with connection.cursor() as cursor:
        cursor.execute("set constraints all immediate; truncate media_items cascade")
    assert _genre_rows() == set()
