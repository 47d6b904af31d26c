"""The whole assignment decision for one user, without the database: the twin of the SQL
function `rec_pick_variant`, used for test vectors and offline reproduction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .hashing import bucket_ranges, choose_variation, hash_point, in_namespace, normalise_weights
from .targeting import is_targeted


@dataclass(frozen=True)
class ExperimentSpec:
    salt: str
    variant_names: Sequence[str]
    weights: Sequence[float]
    traffic: float = 1.0
    namespace: tuple[str, float, float] | None = None
    platform: str | None = None
    min_app_version: str | None = None
    max_app_version: str | None = None
    extra: dict = field(default_factory=dict)


def pick_variant(
    spec: ExperimentSpec,
    user_id: str,
    *,
    request_platform: str | None = None,
    request_app_version: str | None = None,
) -> str | None:
    """The hashed variant for `user_id` (lower-case uuid text), or None when not enrolled."""
    if not is_targeted(
        platform=spec.platform,
        min_app_version=spec.min_app_version,
        max_app_version=spec.max_app_version,
        request_platform=request_platform,
        request_app_version=request_app_version,
    ):
        return None
    if spec.namespace is not None and not in_namespace(user_id, spec.namespace):
        return None
    point = hash_point(spec.salt, user_id, 2)
    ranges = bucket_ranges(len(spec.weights), spec.traffic, normalise_weights(spec.weights))
    index = choose_variation(point, ranges)
    return None if index < 0 else spec.variant_names[index]
