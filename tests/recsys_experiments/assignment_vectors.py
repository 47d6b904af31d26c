"""Generates tests/data/assignment-vectors.json from the Python twin.

    .venv/bin/python -m tests.recsys_experiments.assignment_vectors   # rewrite the file

The cases are deterministic (a fixed seed): 2- and 3-variant uneven weights, weights that
need normalising, partial traffic, namespaces, targeting, and users whose hash point falls
exactly on a range boundary. The tests check that the twin still produces every expected
value and that the SQL function rec_pick_variant agrees bit for bit.
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

from recsys_experiments.lib.assignment import ExperimentSpec, pick_variant
from recsys_experiments.lib.hashing import hash_point

VECTOR_FILE = Path(__file__).parents[1] / "data" / "assignment-vectors.json"
SEED = 20261123
NAMES = ["control", "treatment", "treatment_b"]


def random_user(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def uneven_weights(rng: random.Random, count: int, *, normalised: bool = True) -> list[float]:
    raw = [rng.uniform(0.05, 1.0) for _ in range(count)]
    total = sum(raw)
    weights = [round(weight / total, 4) for weight in raw]
    if normalised:
        weights[-1] = round(1 - sum(weights[:-1]), 4)
    return weights


def user_at_point(rng: random.Random, salt: str, point: float) -> str:
    """A user id whose version-2 hash point is exactly `point` (a multiple of 1/10000)."""
    while True:
        user_id = random_user(rng)
        if hash_point(salt, user_id, 2) == point:
            return user_id


def case(spec: ExperimentSpec, user_id: str, platform=None, app_version=None) -> dict:
    return {
        "salt": spec.salt,
        "user_id": user_id,
        "variants": [
            {"name": name, "weight": weight}
            for name, weight in zip(spec.variant_names, spec.weights, strict=True)
        ],
        "traffic": spec.traffic,
        "namespace": list(spec.namespace) if spec.namespace else None,
        "targeting": {
            "platform": spec.platform,
            "min_app_version": spec.min_app_version,
            "max_app_version": spec.max_app_version,
        },
        "request": {"platform": platform, "app_version": app_version},
        "expected": pick_variant(
            spec, user_id, request_platform=platform, request_app_version=app_version
        ),
    }


def spec_for(rng, count, *, traffic=1.0, namespace=None, normalised=True, **targeting):
    return ExperimentSpec(
        salt=f"salt-{rng.getrandbits(32):08x}",
        variant_names=NAMES[:count],
        weights=uneven_weights(rng, count, normalised=normalised),
        traffic=traffic,
        namespace=namespace,
        **targeting,
    )


def generate_cases() -> list[dict]:
    rng = random.Random(SEED)
    cases = []
    for count in (2, 3):
        for _ in range(30):
            spec = spec_for(rng, count)
            cases += [case(spec, random_user(rng)) for _ in range(20)]
    for _ in range(10):  # weights summing to 0.99-1.01: the engine normalises them
        spec = spec_for(rng, 3, normalised=False)
        cases += [case(spec, random_user(rng)) for _ in range(20)]
    for _ in range(20):
        spec = spec_for(rng, rng.choice((2, 3)), traffic=round(rng.uniform(0.05, 0.95), 2))
        cases += [case(spec, random_user(rng)) for _ in range(20)]
    for _ in range(15):
        start = round(rng.uniform(0, 0.6), 3)
        namespace = (f"ns_{rng.randint(1, 5)}", start, round(start + rng.uniform(0.1, 0.4), 3))
        spec = spec_for(rng, 2, namespace=namespace)
        cases += [case(spec, random_user(rng)) for _ in range(20)]
    platforms = [None, "ios", "android", "web"]
    versions = [None, "1.9.2", "1.10", "1.10.0", "2.0.1", "0.9", "3", "1.x"]
    for _ in range(20):
        spec = spec_for(
            rng,
            2,
            platform=rng.choice(platforms),
            min_app_version=rng.choice([None, "1.9.2", "1.10.0"]),
            max_app_version=rng.choice([None, "2.0", "2.0.1"]),
        )
        cases += [
            case(spec, random_user(rng), rng.choice(platforms), rng.choice(versions))
            for _ in range(10)
        ]
    # Exact boundaries: a range includes its start and excludes its end.
    boundary_spec = ExperimentSpec(
        salt="edge-salt", variant_names=NAMES, weights=[0.2, 0.3, 0.5], traffic=1.0
    )
    half_traffic = ExperimentSpec(
        salt="edge-salt", variant_names=NAMES, weights=[0.2, 0.3, 0.5], traffic=0.5
    )
    for point in (0.0, 0.2, 0.5, 0.9999, 0.1, 0.35, 0.75, 0.3499):
        user_id = user_at_point(rng, "edge-salt", point)
        cases += [case(boundary_spec, user_id), case(half_traffic, user_id)]
    return cases


def main() -> None:
    cases = generate_cases()
    # One case per line: reviewable diffs without a megabyte of indentation.
    lines = ",\n".join(json.dumps(item, separators=(",", ":")) for item in cases)
    VECTOR_FILE.write_text(f'{{"seed": {SEED}, "cases": [\n{lines}\n]}}\n')
    print(f"wrote {len(cases)} cases to {VECTOR_FILE}")


if __name__ == "__main__":
    main()
