"""The deck's ranking knobs: what a variant's `config` may override.

The deck function (deck/sql/deck.v1.sql, `rec_default_ranking_knobs()`) holds the same
defaults; a test proves the two agree. A variant config naming an unknown knob, or giving a
value of the wrong type or range, is rejected when the experiment is created or edited.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Knob:
    name: str
    kind: type  # float or int
    default: float | int
    minimum: float | int
    maximum: float | int
    meaning: str


KNOBS = {
    knob.name: knob
    for knob in (
        Knob("cf_weight", float, 0.4, 0, 10, "blend weight of collaborative filtering (cf_recos)"),
        Knob("genre_weight", float, 0.3, 0, 10, "blend weight of the user's genre preferences"),
        Knob("popularity_weight", float, 0.2, 0, 10, "blend weight of catalogue popularity"),
        Knob("freshness_weight", float, 0.1, 0, 10, "blend weight of recency (release year)"),
        Knob(
            "freshness_half_life_years",
            float,
            5.0,
            0.1,
            100,
            "years after which an item's freshness halves",
        ),
        Knob(
            "diversity_cap",
            int,
            4,
            1,
            50,
            "at most this many items per primary genre before others are served",
        ),
        Knob(
            "candidate_pool",
            int,
            300,
            10,
            5000,
            "candidates taken from each source before blending",
        ),
    )
}

DEFAULT_KNOBS = {name: knob.default for name, knob in KNOBS.items()}


def check_config(config: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(knob, reason) for every problem in a variant's config."""
    for name, value in config.items():
        knob = KNOBS.get(name)
        if knob is None:
            yield name, f"is not a ranking knob (known: {', '.join(sorted(KNOBS))})"
            continue
        is_int = isinstance(value, int) and not isinstance(value, bool)
        is_number = is_int or isinstance(value, float)
        if knob.kind is int and not is_int:
            yield name, "must be a whole number"
        elif knob.kind is float and not is_number:
            yield name, "must be a number"
        elif not knob.minimum <= value <= knob.maximum:
            yield name, f"must be between {knob.minimum} and {knob.maximum}"


def _jsonb_number(value: Any) -> str:
    """A number as PostgreSQL's jsonb writes it (numeric: positional, never an exponent)."""
    if isinstance(value, float) and math.isfinite(value):
        return format(Decimal(repr(value)), "f")
    return json.dumps(value, ensure_ascii=False)


def knobs_hash(knobs: dict[str, Any]) -> str:
    """sha256 (hex) of the knobs' jsonb text: the twin of SQL `rec_knobs_hash(jsonb)`
    (deck/sql/deck.v3.sql), for offline use. jsonb orders keys by length, then bytes, writes
    `{"k": v, "k2": v2}` and numbers positionally (1e-05 as 0.00001); a test holds the two
    equal."""
    ordered = sorted(knobs, key=lambda key: (len(key.encode()), key.encode()))
    text = ", ".join(
        f"{json.dumps(key, ensure_ascii=False)}: {_jsonb_number(knobs[key])}" for key in ordered
    )
    return hashlib.sha256(("{" + text + "}").encode()).hexdigest()
