"""The shared test-vector file: the Python twin produces it, and the SQL engine agrees with
every case bit for bit."""

import json

from django.db import connection

from recsys_experiments.lib.assignment import ExperimentSpec, pick_variant
from tests.recsys_experiments.assignment_vectors import VECTOR_FILE, generate_cases

CASES = json.loads(VECTOR_FILE.read_text())["cases"]


def spec_of(case: dict) -> ExperimentSpec:
    return ExperimentSpec(
        salt=case["salt"],
        variant_names=[variant["name"] for variant in case["variants"]],
        weights=[variant["weight"] for variant in case["variants"]],
        traffic=case["traffic"],
        namespace=tuple(case["namespace"]) if case["namespace"] else None,
        **case["targeting"],
    )


def test_vector_file_is_large_and_varied():
    assert len(CASES) >= 2000
    assert {len(case["variants"]) for case in CASES} == {2, 3}
    assert any(case["traffic"] < 1 for case in CASES)
    assert any(case["namespace"] for case in CASES)
    assert any(case["targeting"]["platform"] for case in CASES)
    expected = [case["expected"] for case in CASES]
    assert None in expected and "treatment_b" in expected


def test_generator_reproduces_the_committed_file():
    assert generate_cases() == CASES


def test_python_twin_matches_every_vector():
    mismatches = [
        case
        for case in CASES
        if pick_variant(
            spec_of(case),
            case["user_id"],
            request_platform=case["request"]["platform"],
            request_app_version=case["request"]["app_version"],
        )
        != case["expected"]
    ]
    assert mismatches == []


def test_sql_engine_matches_every_vector(db):
    with connection.cursor() as cursor:
        cursor.execute(
            """
            select c.ordinality - 1, rec_pick_variant(
                c.item ->> 'salt', c.item ->> 'user_id', c.item -> 'variants',
                (c.item ->> 'traffic')::float8,
                c.item -> 'namespace' ->> 0,
                (c.item -> 'namespace' ->> 1)::float8,
                (c.item -> 'namespace' ->> 2)::float8,
                c.item -> 'targeting' ->> 'platform',
                c.item -> 'targeting' ->> 'min_app_version',
                c.item -> 'targeting' ->> 'max_app_version',
                c.item -> 'request' ->> 'platform',
                c.item -> 'request' ->> 'app_version'
            )
            from jsonb_array_elements(%s::jsonb) with ordinality as c(item, ordinality)
            order by c.ordinality
            """,
            [json.dumps(CASES)],
        )
        results = cursor.fetchall()

    assert len(results) == len(CASES)
    mismatches = [
        (index, CASES[index]["expected"], variant)
        for index, variant in results
        if variant != CASES[index]["expected"]
    ]
    assert mismatches == []
