"""GrowthBook-compatible hashing and bucketing: the Python twin of sql/hashing.v1.sql.

Pure functions, no ORM. The SQL functions are the authority for assignment; this module lets
anyone (tests, operators, offline analysis) reproduce an assignment bit for bit, and follows
GrowthBook's published cross-SDK cases (hash version 1 and 2, getBucketRanges,
chooseVariation, inNamespace, getEqualWeights) in full.

Inputs are ASCII: salts are restricted to ASCII and user ids are lower-case hyphenated uuid
text, so hashing the string's bytes equals GrowthBook's per-character hashing.
"""

from __future__ import annotations

from collections.abc import Sequence

FNV_OFFSET_BASIS = 2166136261
FNV_PRIME = 16777619
UINT32_MASK = 0xFFFFFFFF
# A weight vector within this distance of summing to 1 is used as it is.
WEIGHT_SUM_EXACT = 1e-9
# GrowthBook falls back to equal weights outside this band; our API rejects such vectors.
WEIGHT_SUM_TOLERANCE = 0.01


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a over the UTF-8 bytes of `text`."""
    value = FNV_OFFSET_BASIS
    for byte in text.encode("utf-8"):
        value ^= byte
        value = (value * FNV_PRIME) & UINT32_MASK
    return value


def hash_point(seed: str, value: str, version: int) -> float | None:
    """GrowthBook's hash: a point in [0, 1), or None for an unknown version."""
    if version == 2:
        return fnv1a32(str(fnv1a32(seed + value))) % 10000 / 10000
    if version == 1:
        return fnv1a32(value + seed) % 1000 / 1000
    return None


def equal_weights(count: int) -> list[float]:
    if count <= 0:
        return []
    return [1.0 / count] * count


def bucket_ranges(
    count: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[tuple[float, float]]:
    """Variant i covers [sum of earlier weights, that + coverage * weight_i).

    Because each range starts at the cumulative weight whatever the coverage, raising the
    coverage (traffic) only widens ranges: no enrolled user ever changes variant.
    """
    coverage = min(max(coverage, 0.0), 1.0)
    if weights is None or len(weights) != count:
        weights = equal_weights(count)
    total = sum(weights)
    if total < 1 - WEIGHT_SUM_TOLERANCE or total > 1 + WEIGHT_SUM_TOLERANCE:
        weights = equal_weights(count)
    ranges = []
    cumulative = 0.0
    for weight in weights:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def choose_variation(point: float, ranges: Sequence[tuple[float, float]]) -> int:
    """Index of the first range holding `point`, or -1 when none does (not enrolled)."""
    for index, (start, end) in enumerate(ranges):
        if start <= point < end:
            return index
    return -1


def in_namespace(user_id: str, namespace: tuple[str, float, float]) -> bool:
    name, start, end = namespace
    point = hash_point("__" + name, user_id, 1)
    return start <= point < end


def normalise_weights(weights: Sequence[float]) -> list[float]:
    """Scale to sum 1; a vector already within 1e-9 of 1 is returned unchanged."""
    total = 0.0
    for weight in weights:
        total += weight
    if abs(total - 1.0) <= WEIGHT_SUM_EXACT:
        return list(weights)
    return [weight / total for weight in weights]
