"""The active experiments as a GrowthBook `features` payload (the SDK manifest,
GET /api/v1/experiments/manifest): a GrowthBook SDK evaluating feature `<experiment key>` for
attributes {"id": <user id>, "platform": ..., "app_version": ...} returns the variant name the
server's hash gives (lib/assignment.py `pick_variant`, SQL rec_pick_variant).

What the payload cannot carry: stored assignments (an admin's override, and the variant a user
keeps after a salt rotation or a weight change, which is sticky on the server). Those are server
facts: POST /api/v1/assignments knows them, the manifest reproduces the hash only.

App versions: GrowthBook compares versions as padded strings (`$vgte`), the server as numbers
with trailing zero parts dropped (3.0 == 3.0.0). They agree when the app sends
major.minor.patch with parts of at most 5 digits, so each bound is written with three parts
(3 -> 3.0.0); a bound with a fourth part that is not zero is written as stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .hashing import normalise_weights
from .targeting import app_version_key

HASH_ATTRIBUTE = "id"
HASH_VERSION = 2


def manifest_version(version: str) -> str:
    """A stored bound as the SDK should compare it: three numeric parts when it has at most
    three significant ones (3.1 -> 3.1.0, 3.0.0.0 -> 3.0.0)."""
    parts = list(app_version_key(version))
    if len(parts) > 3:
        return ".".join(str(part) for part in parts)
    return ".".join(str(part) for part in parts + [0] * (3 - len(parts)))


def targeting_condition(
    platform: str | None, min_app_version: str | None, max_app_version: str | None
) -> dict | None:
    """GrowthBook's condition for the server's targeting rules (None: no rule)."""
    condition: dict = {}
    if platform is not None:
        condition["platform"] = platform
    versions = {}
    if min_app_version is not None:
        versions["$vgte"] = manifest_version(min_app_version)
    if max_app_version is not None:
        versions["$vlte"] = manifest_version(max_app_version)
    if versions:
        condition["app_version"] = versions
    return condition or None


def experiment_rule(experiment: Mapping) -> dict:
    """One experiment (a row of rec_active_experiments) as a GrowthBook experiment rule."""
    variants = experiment["variants"]
    rule = {
        "key": experiment["key"],
        "variations": [variant["name"] for variant in variants],
        "weights": normalise_weights([float(variant["weight"]) for variant in variants]),
        "coverage": float(experiment["traffic"]),
        "hashAttribute": HASH_ATTRIBUTE,
        "seed": experiment["salt"],
        "hashVersion": HASH_VERSION,
    }
    if experiment.get("namespace_name") is not None:
        rule["namespace"] = [
            experiment["namespace_name"],
            float(experiment["namespace_start"]),
            float(experiment["namespace_end"]),
        ]
    condition = targeting_condition(
        experiment.get("platform"),
        experiment.get("min_app_version"),
        experiment.get("max_app_version"),
    )
    if condition is not None:
        rule["condition"] = condition
    return rule


def growthbook_features(experiments: Iterable[Mapping]) -> dict:
    """{"features": {key: {"defaultValue": None, "rules": [rule]}}} for the experiments."""
    return {
        "features": {
            experiment["key"]: {"defaultValue": None, "rules": [experiment_rule(experiment)]}
            for experiment in experiments
        }
    }
