"""GrowthBook's published cross-SDK hashing and bucketing cases, run against the Python twin
and the SQL functions, so an assignment can be reproduced with any public SDK."""

import json
from pathlib import Path

import pytest
from django.db import connection

from recsys_experiments.lib.hashing import (
    bucket_ranges,
    choose_variation,
    equal_weights,
    fnv1a32,
    hash_point,
    in_namespace,
)

CASES = json.loads((Path(__file__).parents[2] / "data" / "growthbook-cases.json").read_text())


def test_the_case_file_keeps_its_source_notice():
    assert "MIT License" in CASES["source"]
    assert all(CASES[section] for section in ("hash", "getBucketRange", "chooseVariation"))


def flat(ranges) -> list[float]:
    return [bound for pair in ranges for bound in pair]


@pytest.mark.parametrize(("seed", "value", "version", "expected"), CASES["hash"])
def test_python_hash(seed, value, version, expected):
    assert hash_point(seed, value, version) == expected


@pytest.mark.parametrize(("name", "args", "expected"), CASES["getBucketRange"])
def test_python_bucket_ranges(name, args, expected):
    count, coverage, weights = args
    ranges = bucket_ranges(count, coverage, weights)

    assert flat(ranges) == pytest.approx(flat(expected), abs=1e-9)


@pytest.mark.parametrize(("name", "point", "ranges", "expected"), CASES["chooseVariation"])
def test_python_choose_variation(name, point, ranges, expected):
    assert choose_variation(point, [tuple(r) for r in ranges]) == expected


@pytest.mark.parametrize(("name", "user_id", "namespace", "expected"), CASES["inNamespace"])
def test_python_in_namespace(name, user_id, namespace, expected):
    assert in_namespace(user_id, tuple(namespace)) is expected


@pytest.mark.parametrize(("count", "expected"), CASES["getEqualWeights"])
def test_python_equal_weights(count, expected):
    assert equal_weights(count) == pytest.approx(expected, abs=1e-8)


def sql(query: str, params: list):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def test_sql_hash(db):
    for seed, value, version, expected in CASES["hash"]:
        [(point,)] = sql("select rec_hash_point(%s, %s, %s)", [seed, value, version])
        assert point == expected, (seed, value, version)


def test_sql_bucket_ranges(db):
    for name, (count, coverage, weights), expected in CASES["getBucketRange"]:
        rows = sql(
            "select range_start, range_end from rec_bucket_ranges(%s, %s, %s::float8[])"
            " with ordinality as r(range_start, range_end, n) order by n",
            [count, coverage, weights],
        )
        assert flat(rows) == pytest.approx(flat(expected), abs=1e-9), name


def test_sql_choose_variation(db):
    for name, point, ranges, expected in CASES["chooseVariation"]:
        starts = [float(start) for start, _ in ranges]
        ends = [float(end) for _, end in ranges]
        [(index,)] = sql(
            "select rec_choose_variation(%s, %s::float8[], %s::float8[])", [point, starts, ends]
        )
        assert index == expected, name


def test_sql_in_namespace(db):
    for name, user_id, (namespace, start, end), expected in CASES["inNamespace"]:
        [(inside,)] = sql(
            "select rec_in_namespace(%s, %s, %s, %s)", [user_id, namespace, start, end]
        )
        assert inside is expected, name


def test_sql_equal_weights(db):
    for count, expected in CASES["getEqualWeights"]:
        [(weights,)] = sql("select rec_equal_weights(%s)", [count])
        assert weights == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", 2166136261), ("a", 3826002220), ("foobar", 3214735720)],
)
def test_fnv1a32_reference_values_in_python_and_sql(db, text, expected):
    [(in_sql,)] = sql("select rec_fnv1a32(%s)", [text])
    assert fnv1a32(text) == expected
    assert in_sql == expected
