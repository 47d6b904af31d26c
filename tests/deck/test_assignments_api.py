"""POST /api/v1/assignments: app-side experiments get the deck's sticky variants, configs and
knobs without a deck, and can cache them by ETag."""

import pytest

from recsys_experiments.lib.knobs import DEFAULT_KNOBS
from recsys_experiments.models import Assignment
from recsys_experiments.services.assignments import assignment_override
from telemetry.models import Impression
from tests.factories.experiments import ActiveExperimentFactory, ExperimentFactory
from tests.helpers import api_error_fields

URL = "/api/v1/assignments"


def post(client, body=None, **headers):
    return client.post(URL, body if body is not None else {}, format="json", **headers)


def onboarding(**overrides):
    return ActiveExperimentFactory(
        key="onboarding_v2",
        variants=[
            {"name": "control", "weight": 0.5, "config": {"screen": "classic"}},
            {"name": "carousel", "weight": 0.5, "config": {"screen": "carousel"}},
        ],
        **overrides,
    )


def test_assigns_like_the_deck_and_returns_variant_config_and_knobs(app_client, app_user, catalog):
    experiment = onboarding()
    cap = ActiveExperimentFactory(
        key="diversity_cap_v1",
        variants=[
            {"name": "control", "weight": 0.5, "config": {"diversity_cap": 4}},
            {"name": "treatment", "weight": 0.5, "config": {"diversity_cap": 4}},
        ],
    )
    ExperimentFactory(key="still_a_draft")

    response = post(app_client)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body["assignments"]) == {experiment.key, cap.key}
    stored = dict(
        Assignment.objects.filter(user=app_user).values_list("experiment__key", "variant")
    )
    assert {key: a["variant"] for key, a in body["assignments"].items()} == stored
    chosen = body["assignments"][experiment.key]
    screen = "classic" if chosen["variant"] == "control" else "carousel"
    assert chosen["config"] == {"screen": screen}
    assert body["knobs"] == {**DEFAULT_KNOBS, "screen": screen, "diversity_cap": 4}
    assert body["ranking"]["profile"] == "default"
    assert len(body["ranking"]["knobs_hash"]) == 64
    # Nothing was served: no impression, so the user is not yet exposed in the results.
    assert not Impression.objects.filter(user=app_user).exists()
    # The next deck ranks with the same variants and knobs.
    deck = app_client.post("/api/v1/deck", {"limit": 3}, format="json").json()
    assert deck["experiments"] == {k: a["variant"] for k, a in body["assignments"].items()}
    assert deck["ranking"] == body["ranking"]


def test_sticky_and_overrides_win(app_client, app_user):
    experiment = onboarding()
    first = post(app_client).json()["assignments"][experiment.key]["variant"]
    assert all(
        post(app_client).json()["assignments"][experiment.key]["variant"] == first for _ in range(3)
    )
    forced = "carousel" if first == "control" else "control"
    assignment_override(
        experiment=experiment, user=app_user, variant=forced, actor=None, source="test"
    )
    assert post(app_client).json()["assignments"][experiment.key]["variant"] == forced


def test_the_experiments_list_narrows_the_answer(app_client):
    onboarding()
    ActiveExperimentFactory(key="button_colour")

    body = post(app_client, {"experiments": ["button_colour"]}).json()

    assert list(body["assignments"]) == ["button_colour"]


def test_an_experiment_the_user_is_not_eligible_for_is_absent(app_client):
    ActiveExperimentFactory(key="ios_only", platform="ios")
    ActiveExperimentFactory(key="from_3", min_app_version="3.0")
    ActiveExperimentFactory(key="nobody", traffic=0.0)

    android = post(app_client, {"platform": "android", "app_version": "2.9"}).json()
    ios = post(app_client, {"platform": "ios", "app_version": "3.0.1"}).json()

    assert android["assignments"] == {}
    assert set(ios["assignments"]) == {"ios_only", "from_3"}
    # Asking for an eligible-but-outside experiment by key is not an error: it is absent.
    assert post(app_client, {"experiments": ["nobody"]}).json()["assignments"] == {}


def test_etag_and_if_none_match(app_client, app_user):
    experiment = onboarding()
    first = post(app_client)
    etag = first["ETag"]
    assert etag.startswith('"') and first["Cache-Control"] == "private, no-cache"

    again = post(app_client, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert post(app_client, HTTP_IF_NONE_MATCH=f'"other", W/{etag}').status_code == 304
    assert post(app_client, HTTP_IF_NONE_MATCH='"stale"').status_code == 200

    # An edit of a running experiment changes the version and the tag.
    version = first.json()["version"]
    experiment.description = "edited"
    experiment.save()
    changed = post(app_client, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed.json()["version"] != version
    assert changed["ETag"] != etag

    # An override changes the user's answer (not the definitions): a new tag too.
    etag = changed["ETag"]
    variant = changed.json()["assignments"][experiment.key]["variant"]
    assignment_override(
        experiment=experiment,
        user=app_user,
        variant="carousel" if variant == "control" else "control",
        actor=None,
        source="test",
    )
    assert post(app_client, HTTP_IF_NONE_MATCH=etag).status_code == 200


def test_version_changes_when_an_experiment_starts_or_ends(app_client):
    before = post(app_client).json()["version"]
    experiment = onboarding()
    started = post(app_client).json()["version"]
    experiment.status = "ended"
    experiment.save()
    ended = post(app_client).json()["version"]

    assert started != before
    assert ended == before  # the same (empty) set of running definitions


def test_the_version_follows_ranking_profiles(app_client):
    from deck.models import RankingProfile

    before = post(app_client).json()["version"]
    profile = RankingProfile.objects.get(is_default=True)
    profile.knobs = {**profile.knobs, "cf_weight": 0.9}
    profile.save()

    assert post(app_client).json()["version"] != before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"experiments": "onboarding_v2"}, "experiments"),
        ({"experiments": {"a": 1}}, "experiments"),
        ({"experiments": [1]}, "experiments[0]"),
        ({"experiments": ["onboarding_v2", "no_such_key"]}, "experiments[1]"),
        ({"experiments": ["Not A Key!"]}, "experiments[0]"),
        ({"experiments": ["still_a_draft"]}, "experiments[0]"),
        ({"experiments": ["onboarding_v2"] * 101}, "experiments"),
        ({"platform": "windows"}, "platform"),
        ({"platform": 1}, "platform"),
        ({"app_version": "3.0-beta"}, "app_version"),
        ({"app_version": 3}, "app_version"),
        ({"attributes": [1, 2]}, "attributes"),
        ({"attributes": "x"}, "attributes"),
        ({"attributes": {str(n): n for n in range(51)}}, "attributes"),
        ({"experiments": ["onboarding\\u0000"]}, "experiments[0]"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(app_client, app_user, body, field):
    onboarding()
    ExperimentFactory(key="still_a_draft")

    response = post(app_client, body)

    assert response.status_code == 400, response.content
    assert field in api_error_fields(response)
    # Nothing was assigned by a refused request.
    assert not Assignment.objects.filter(user=app_user).exists()


def test_nul_bytes_anywhere_are_a_400(app_client):
    for body in (
        '{"experiments": ["onboarding\\u0000"]}',
        '{"attributes": {"k": "v\\u0000"}}',
        '{"attributes": {"k\\u0000": 1}}',
    ):
        response = app_client.post(URL, body, content_type="application/json")
        assert response.status_code == 400, body
        assert api_error_fields(response)


def test_a_non_object_body_is_a_400(app_client):
    response = app_client.post(URL, "[1, 2]", content_type="application/json")
    assert response.status_code == 400


def test_anonymous_is_refused(db, api_client):
    assert post(api_client).status_code == 401
