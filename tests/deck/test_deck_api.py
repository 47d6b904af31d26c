import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deck.models import MediaItem
from recsys_experiments.lib.knobs import DEFAULT_KNOBS
from recsys_experiments.services.assignments import assignment_override
from telemetry.models import Impression, Outcome
from tests.factories.catalog import CfRecoFactory, UserGenrePreferenceFactory
from tests.factories.experiments import ActiveExperimentFactory, ExperimentFactory
from tests.helpers import api_error_fields


def fetch_deck(client, **body):
    response = client.post("/api/v1/deck", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def variants(*configs):
    return [
        {"name": f"v{index}", "weight": 1 / len(configs), "config": config}
        for index, config in enumerate(configs)
    ]


def test_every_impression_is_tagged_with_the_response_experiments(app_client, app_user, catalog):
    blend = ActiveExperimentFactory(key="swipe_blend_test")
    cap = ActiveExperimentFactory(key="diversity_cap_v1")
    ExperimentFactory(key="still_a_draft")

    deck = fetch_deck(app_client, limit=12, platform="ios", app_version="2.4.0")

    assert set(deck["experiments"]) == {blend.key, cap.key}
    impressions = list(Impression.objects.filter(rec_request_id=deck["rec_request_id"]))
    assert len(impressions) == len(deck["items"]) == 12
    assert {i.user_id for i in impressions} == {app_user.pk}
    for impression in impressions:
        assert impression.request_context == {
            "experiments": deck["experiments"],
            "platform": "ios",
            "app_version": "2.4.0",
            "ranking": deck["ranking"],
        }
    assert deck["ranking"]["profile"] == "default"
    assert sorted(item["position"] for item in deck["items"]) == list(range(1, 13))
    assert {(i.media_item_id, i.position, i.source) for i in impressions} == {
        (item["media_item_id"], item["position"], item["source"]) for item in deck["items"]
    }


def test_default_limit_is_20_and_each_deck_has_its_own_request_id(app_client, catalog):
    first, second = fetch_deck(app_client), fetch_deck(app_client)

    assert len(first["items"]) == 20
    assert first["rec_request_id"] != second["rec_request_id"]


def test_a_forced_variant_shows_up_in_the_tags(app_client, app_user, catalog):
    experiment = ActiveExperimentFactory()
    assignment_override(
        experiment=experiment, user=app_user, variant="treatment", actor=None, source="test"
    )

    deck = fetch_deck(app_client, limit=5)

    assert deck["experiments"] == {experiment.key: "treatment"}
    tags = Impression.objects.filter(rec_request_id=deck["rec_request_id"]).values_list(
        "request_context__experiments", flat=True
    )
    assert set(map(str, tags)) == {str({experiment.key: "treatment"})}


def test_the_variant_config_changes_the_deck(app_client, app_user, catalog):
    only_cf = {"cf_weight": 1, "genre_weight": 0, "popularity_weight": 0, "freshness_weight": 0}
    only_popularity = {**only_cf, "cf_weight": 0, "popularity_weight": 1}
    experiment = ActiveExperimentFactory(variants=variants(only_cf, only_popularity))
    for item in catalog[-30:]:  # CF favours the least popular titles
        CfRecoFactory(user=app_user, media_item=item, score=0.9)

    sources = {}
    for variant in ("v0", "v1"):
        assignment_override(
            experiment=experiment, user=app_user, variant=variant, actor=None, source="test"
        )
        sources[variant] = {item["source"] for item in fetch_deck(app_client, limit=10)["items"]}

    assert sources == {"v0": {"cf"}, "v1": {"popularity"}}


def test_the_diversity_cap_spreads_genres(app_client, app_user, catalog):
    experiment = ActiveExperimentFactory(variants=variants({"diversity_cap": 1}, {}))
    UserGenrePreferenceFactory(user=app_user, genre="horror", weight=1.0)

    primary_genres = {}
    for variant in ("v0", "v1"):
        assignment_override(
            experiment=experiment, user=app_user, variant=variant, actor=None, source="test"
        )
        items = fetch_deck(app_client, limit=5)["items"]
        primary_genres[variant] = [item["genres"][0] for item in items]

    assert len(set(primary_genres["v0"])) == 5  # one per genre with a cap of 1
    assert primary_genres["v1"].count("horror") == DEFAULT_KNOBS["diversity_cap"]


def test_acted_upon_items_are_not_served_again(app_client, app_user, catalog):
    deck = fetch_deck(app_client, limit=4)
    items = [item["media_item_id"] for item in deck["items"]]
    kinds = ["like", "dislike", "watchlist", "rating"]
    outcomes = [
        {
            "event_id": f"e-{kind}",
            "rec_request_id": deck["rec_request_id"],
            "media_item_id": item,
            "outcome_type": kind,
            **({"value": 4.5} if kind == "rating" else {}),
        }
        for item, kind in zip(items, kinds, strict=True)
    ]
    app_client.post("/api/v1/outcomes", {"outcomes": outcomes}, format="json")

    later = fetch_deck(app_client, limit=50)

    assert not {item["media_item_id"] for item in later["items"]} & set(items)


def act_on(user, items, kind="dislike"):
    Outcome.objects.bulk_create(
        Outcome(
            event_id=f"acted-{item.pk}",
            user=user,
            rec_request_id=uuid.uuid4(),
            media_item=item,
            outcome_type=kind,
        )
        for item in items
    )


def test_the_deck_serves_unseen_titles_while_any_remain(app_client, app_user):
    # 600 titles; the user acted on the 540 most popular and newest, which fill every
    # source's candidate pool (300 by default): only the 60 oldest, least popular are left.
    catalogue = MediaItem.objects.bulk_create(
        MediaItem(title=f"t{n}", genres=["drama"], year=2024 - n // 20, popularity=600 - n)
        for n in range(600)
    )
    act_on(app_user, catalogue[:540])
    for item in catalogue[:100]:  # CF and genre sources point at acted titles too
        CfRecoFactory(user=app_user, media_item=item, score=1.0)
    UserGenrePreferenceFactory(user=app_user, genre="drama", weight=1.0)
    unseen = {item.pk for item in catalogue[540:]}

    first = fetch_deck(app_client, limit=50)["items"]
    assert len(first) == 50
    assert {item["media_item_id"] for item in first} <= unseen

    act_on(app_user, MediaItem.objects.filter(pk__in=[i["media_item_id"] for i in first]))
    last = fetch_deck(app_client, limit=50)["items"]
    assert len(last) == 10
    assert {item["media_item_id"] for item in last} == unseen - {i["media_item_id"] for i in first}

    act_on(app_user, MediaItem.objects.filter(pk__in=[i["media_item_id"] for i in last]))
    assert fetch_deck(app_client, limit=50)["items"] == []


def test_detail_open_does_not_exclude_an_item(app_client, catalog):
    first = fetch_deck(app_client, limit=1)["items"][0]
    deck_id = fetch_deck(app_client, limit=1)["rec_request_id"]
    app_client.post(
        "/api/v1/outcomes",
        {
            "outcomes": [
                {
                    "event_id": "peek",
                    "rec_request_id": deck_id,
                    "media_item_id": first["media_item_id"],
                    "outcome_type": "detail_open",
                }
            ]
        },
        format="json",
    )

    assert fetch_deck(app_client, limit=1)["items"][0]["media_item_id"] == first["media_item_id"]


def test_cold_start_user_gets_a_full_deck(app_client, catalog):
    deck = fetch_deck(app_client, limit=10)

    assert len(deck["items"]) == 10
    assert {item["source"] for item in deck["items"]} <= {"popularity", "freshness"}


def test_personal_sources_show_when_the_user_has_data(app_client, app_user, catalog):
    UserGenrePreferenceFactory(user=app_user, genre="scifi", weight=1.0)
    for item in catalog[50:60]:
        CfRecoFactory(user=app_user, media_item=item, score=1.0)

    sources = {item["source"] for item in fetch_deck(app_client, limit=20)["items"]}

    assert {"cf", "genre"} <= sources


def test_empty_catalog_gives_an_empty_deck(app_client, db):
    experiment = ActiveExperimentFactory()

    deck = fetch_deck(app_client, limit=10)

    assert deck["items"] == []
    assert set(deck["experiments"]) == {experiment.key}
    assert not MediaItem.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 51}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"platform": "symbian"}, "platform"),
        ({"app_version": "2.x"}, "app_version"),
        ({"app_version": "\u0661.\u0662"}, "app_version"),  # Arabic-Indic digits, not ASCII ones
    ],
)
def test_bad_deck_requests_are_400_naming_the_field(app_client, catalog, body, field):
    response = app_client.post("/api/v1/deck", body, format="json")

    assert response.status_code == 400
    assert field in api_error_fields(response)
    assert not Impression.objects.exists()


def test_no_token_is_401(api_client, catalog):
    response = api_client.post("/api/v1/deck", {}, format="json")

    assert response.status_code == 401
    assert not Impression.objects.exists()


def test_a_deck_costs_the_same_queries_whatever_its_size(app_client, catalog):
    ActiveExperimentFactory()
    ActiveExperimentFactory()

    counts = []
    for limit in (1, 50):
        with CaptureQueriesContext(connection) as captured:
            fetch_deck(app_client, limit=limit)
        counts.append(len(captured))

    # Token lookup, role switch in and out, one deck function call, the request's savepoint.
    assert counts[0] == counts[1] <= 8


def test_outcomes_on_a_deck_reference_its_impressions(app_client, catalog):
    deck = fetch_deck(app_client, limit=3)
    item = deck["items"][1]["media_item_id"]
    body = {
        "outcomes": [
            {
                "event_id": "x1",
                "rec_request_id": deck["rec_request_id"],
                "media_item_id": item,
                "outcome_type": "like",
            }
        ]
    }

    app_client.post("/api/v1/outcomes", body, format="json")

    outcome = Outcome.objects.get(event_id="x1")
    assert Impression.objects.filter(
        user_id=outcome.user_id, rec_request_id=outcome.rec_request_id, media_item_id=item
    ).exists()
