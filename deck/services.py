from __future__ import annotations

import json

from django.db import connection


def deck_build(*, user, limit: int, platform: str | None, app_version: str | None) -> dict:
    """One deck from media_swipe_deck_v1: assigned, ranked, and recorded as tagged impressions
    in the caller's transaction. One SQL call whatever the deck size."""
    with connection.cursor() as cursor:
        cursor.execute(
            "select media_swipe_deck_v1(%s, %s, %s, %s)", [user.pk, limit, platform, app_version]
        )
        deck = cursor.fetchone()[0]
    return json.loads(deck) if isinstance(deck, str) else deck
