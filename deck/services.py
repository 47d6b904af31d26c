from __future__ import annotations

import json

from django.db import connection

from recsys_experiments.lib.errors import InvalidInput


def deck_build(*, user, limit: int, platform: str | None, app_version: str | None) -> dict:
    """One deck from media_swipe_deck_v1: assigned, ranked, and recorded as tagged impressions
    in the caller's transaction. One SQL call whatever the deck size."""
    with connection.cursor() as cursor:
        cursor.execute(
            "select media_swipe_deck_v1(%s, %s, %s, %s)", [user.pk, limit, platform, app_version]
        )
        deck = cursor.fetchone()[0]
    return json.loads(deck) if isinstance(deck, str) else deck


# Everything a client's cached assignments depend on besides the user's own rows: the
# definitions of the experiments running now (their ids and last change) and of the ranking
# profiles (ids and versions; a binding change bumps the version). Run as the end user, RLS
# shows exactly the active experiments, which is all a client can see anyway.
DEFINITIONS_VERSION = """
select md5(
    coalesce((select string_agg(e.id::text || '@' || e.updated_at::text, ',' order by e.id)
              from rec_experiments as e
              where e.id in (select a.id from rec_active_experiments() as a)), '')
    || '|' ||
    coalesce((select string_agg(p.id::text || '@' || p.version::text, ',' order by p.id)
              from rec_ranking_profiles as p), '')
)
"""


def definitions_version() -> str:
    """A string that changes whenever an experiment starts, ends or is edited, or a ranking
    profile changes: what app-side clients cache their assignments against."""
    with connection.cursor() as cursor:
        cursor.execute(DEFINITIONS_VERSION)
        return cursor.fetchone()[0]


def assignments_get(
    *,
    user,
    experiments: list[str] | None,
    platform: str | None,
    app_version: str | None,
) -> dict:
    """The caller's variants, assigned (sticky) through the deck's own SQL path,
    rec_deck_setup: every active experiment the user is eligible for gets its stored or hashed
    variant, exactly as the next deck would. `experiments` (keys) narrows the answer, not the
    assignment; a key that is not an active experiment is InvalidInput naming its index.
    `knobs` and `ranking` are the merged ranking knobs and their provenance for all the
    user's variants (what the next deck ranks with)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "select coalesce(jsonb_object_agg(e.key, e.variants), '{}'::jsonb)"
            " from rec_active_experiments() as e"
        )
        definitions = _json(cursor.fetchone()[0])
        unknown = {
            f"experiments[{index}]": ["no active experiment has this key"]
            for index, key in enumerate(experiments or ())
            if key not in definitions
        }
        if unknown:
            raise InvalidInput(unknown)
        cursor.execute(
            "select s.experiments, s.knobs, s.ranking from rec_deck_setup(%s, %s, %s) as s",
            [user.pk, platform, app_version],
        )
        chosen, knobs, ranking = (_json(value) for value in cursor.fetchone())
    if experiments is not None:
        wanted = set(experiments)
        chosen = {key: variant for key, variant in chosen.items() if key in wanted}
    assignments = {}
    for key in sorted(chosen):
        config = next(
            (v.get("config") or {} for v in definitions[key] if v.get("name") == chosen[key]), {}
        )
        assignments[key] = {"variant": chosen[key], "config": config}
    return {
        "assignments": assignments,
        "knobs": knobs,
        "ranking": ranking,
        "version": definitions_version(),
    }


def _json(value):
    return json.loads(value) if isinstance(value, str) else value
