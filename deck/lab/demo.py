"""Believable demo data: a catalogue with long-tail popularity, users with tastes, CF scores,
two running experiments, and a week of history made through the real deck and outcome path."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from deck.models import CfReco, MediaItem, UserGenrePreference
from deck.services import deck_build
from recsys_experiments.db_roles import END_USER_ROLE, acting_as
from recsys_experiments.models import Experiment, ExperimentPhase
from recsys_experiments.services.experiments import experiment_activate, experiment_create
from telemetry.services import outcomes_record

GENRES = [
    "drama", "comedy", "action", "thriller", "horror", "scifi",
    "romance", "documentary", "animation", "fantasy", "crime", "mystery",
]  # fmt: skip
ADJECTIVES = [
    "Silent", "Last", "Broken", "Golden", "Hidden", "Midnight", "Crimson", "Lost", "Electric",
    "Quiet", "Savage", "Frozen", "Little", "Endless", "Burning", "Distant", "Hollow", "Wild",
]  # fmt: skip
NOUNS = [
    "River", "Protocol", "Garden", "Empire", "Signal", "Harbor", "Orchard", "Witness", "Comet",
    "Frontier", "Echo", "Lantern", "Machine", "Summer", "Kingdom", "Voyage", "Mirror", "Storm",
]  # fmt: skip
DEMO_USERNAME = "demo"
DEMO_EXPERIMENTS = [
    {
        "key": "swipe_blend_test",
        "description": "Lean the blend towards collaborative filtering.",
        "variants": [
            {"name": "control", "weight": 0.5, "config": {}},
            {
                "name": "cf_heavy",
                "weight": 0.5,
                "config": {"cf_weight": 0.8, "popularity_weight": 0.1},
            },
        ],
    },
    {
        "key": "diversity_cap_v1",
        "description": "At most two items per primary genre before repeating a genre.",
        "variants": [
            {"name": "control", "weight": 0.5, "config": {}},
            {"name": "tight_cap", "weight": 0.5, "config": {"diversity_cap": 2}},
        ],
    },
]


@dataclass
class SeedReport:
    items: int = 0
    users: int = 0
    decks: int = 0
    impressions: int = 0
    outcomes: int = 0


def demo_present() -> bool:
    """seed_demo runs in one transaction, so any demo title means all of it is there."""
    return MediaItem.objects.filter(external_id__startswith="demo-").exists()


def _catalogue(rng: random.Random, count: int) -> list[MediaItem]:
    items = []
    for rank in range(1, count + 1):
        genres = rng.sample(GENRES, k=rng.choice((1, 2, 2, 3)))
        year = min(2026, int(2026 - rng.expovariate(1 / 12)))
        title = f"{rng.choice(('The ', '', ''))}{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
        items.append(
            MediaItem(
                title=title if rank % 7 else f"{title} {rng.choice(('II', 'Returns', 'Redux'))}",
                genres=genres,
                year=max(1950, year),
                # Zipf-like long tail: a few blockbusters, many niche titles.
                popularity=round(10_000 / rank**0.9 * rng.uniform(0.7, 1.3), 2),
                external_id=f"demo-{rank:05d}",
            )
        )
    return MediaItem.objects.bulk_create(items)


def _users(rng: random.Random, count: int) -> list:
    user_model = get_user_model()
    users = [user_model(username=DEMO_USERNAME, email="demo@example.com")]
    users += [
        user_model(username=f"viewer_{n:03d}", email=f"viewer_{n:03d}@example.com")
        for n in range(1, count)
    ]
    for user in users:
        user.set_unusable_password()
    existing = set(
        user_model.objects.filter(username__in=[u.username for u in users]).values_list(
            "username", flat=True
        )
    )
    user_model.objects.bulk_create([u for u in users if u.username not in existing])
    return list(user_model.objects.filter(username__in=[u.username for u in users]))


def _tastes(rng: random.Random, users, items) -> dict:
    """Genre preferences and CF scores; returns {user_id: set of liked genres}."""
    prefs, recos, tastes = [], [], {}
    for user in users:
        liked = rng.sample(GENRES, k=rng.randint(2, 4))
        tastes[user.pk] = set(liked)
        prefs += [
            UserGenrePreference(user=user, genre=genre, weight=round(rng.uniform(0.3, 1.0), 2))
            for genre in liked
        ]
        for item in rng.sample(items, k=40):
            match = len(tastes[user.pk] & set(item.genres))
            score = min(1.0, rng.uniform(0, 0.6) + 0.2 * match)
            recos.append(CfReco(user=user, media_item=item, score=round(score, 4)))
    UserGenrePreference.objects.bulk_create(prefs)
    CfReco.objects.bulk_create(recos)
    return tastes


def _experiments() -> None:
    eight_days_ago = timezone.now() - timedelta(days=8)
    for definition in DEMO_EXPERIMENTS:
        experiment = experiment_create(data=definition, actor=None, source="command")
        experiment_activate(experiment=experiment, actor=None, source="command")
        # Demo history starts a week back, so the experiments must have started before it.
        Experiment.objects.filter(pk=experiment.pk).update(started_at=eight_days_ago)
        ExperimentPhase.objects.filter(experiment=experiment, number=1).update(
            started_at=eight_days_ago
        )


def _outcomes_for(rng, deck, liked_genres, served_at) -> list[dict]:
    boost = 0.05 if deck["experiments"].get("swipe_blend_test") == "cf_heavy" else 0.0
    events = []
    for item in deck["items"]:
        match = bool(liked_genres & set(item["genres"]))
        moment = served_at + timedelta(seconds=rng.randint(5, 900))

        def event(kind, value=None, item=item, at=moment):
            payload = {
                "event_id": f"demo-{deck['rec_request_id']}-{item['position']}-{kind}",
                "rec_request_id": deck["rec_request_id"],
                "media_item_id": item["media_item_id"],
                "outcome_type": kind,
                "occurred_at": at.isoformat(),
            }
            if value is not None:
                payload["value"] = value
            events.append(payload)

        if rng.random() < 0.3:
            event("detail_open")
        roll = rng.random()
        like_rate = 0.15 + 0.25 * match + boost
        if roll < like_rate:
            event("like")
            if rng.random() < 0.3:
                event("rating", rng.choice((3.5, 4, 4.5, 5)))
        elif roll < like_rate + 0.2:
            event("dislike")
        elif rng.random() < 0.06:
            event("watchlist")
    return events


def _history(rng, users, tastes, days: int, report: SeedReport) -> None:
    now = timezone.now()
    for offset in range(days, -1, -1):
        day = (now - timedelta(days=offset)).date()
        for user in users:
            if rng.random() > 0.55 and user.username != DEMO_USERNAME:
                continue
            served_at = datetime.combine(day, time(rng.randint(7, 22), rng.randint(0, 59)), UTC)
            served_at = min(served_at, now - timedelta(minutes=20))
            # As the app would: the end-user role with the user's id (the outcome path checks
            # request ownership against app_current_user_id()).
            with acting_as(END_USER_ROLE, user.pk):
                deck = deck_build(
                    user=user,
                    limit=10,
                    platform=rng.choice(("ios", "android", "web")),
                    app_version=rng.choice(("2.3.1", "2.4.0", "2.4.2")),
                )
                events = _outcomes_for(rng, deck, tastes[user.pk], served_at)
                if events:
                    outcomes_record(user=user, outcomes=events)
            with connection.cursor() as cursor:
                cursor.execute(
                    "update rec_impressions set created_at = %s where rec_request_id = %s",
                    [served_at, deck["rec_request_id"]],
                )
                cursor.execute(
                    "update rec_outcomes set created_at = occurred_at where rec_request_id = %s",
                    [deck["rec_request_id"]],
                )
            report.decks += 1
            report.impressions += len(deck["items"])
            report.outcomes += len(events)


@transaction.atomic
def seed_demo(*, items: int = 600, users: int = 220, days: int = 7, seed: int = 7) -> SeedReport:
    """All or nothing: one transaction, so a failed seed leaves nothing half-written."""
    rng = random.Random(seed)
    report = SeedReport()
    catalogue = _catalogue(rng, items)
    people = _users(rng, users)
    tastes = _tastes(rng, people, catalogue)
    _experiments()
    _history(rng, people, tastes, days, report)
    report.items, report.users = len(catalogue), len(people)
    return report
