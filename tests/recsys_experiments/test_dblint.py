import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from recsys_experiments.dblint import CHECKS, lint

# One planted problem per check: (check, statements, the object the finding must name).
PLANTS = {
    "rls_disabled": (
        ["create table lint_probe (id int primary key, user_id uuid)"],
        "lint_probe",
    ),
    "rls_without_policy": (
        [
            "create table lint_probe (id int primary key)",
            "alter table lint_probe enable row level security",
        ],
        "lint_probe",
    ),
    "per_row_auth_call": (
        [
            "create table lint_probe (id int primary key, user_id uuid)",
            "alter table lint_probe enable row level security",
            "create policy per_row on lint_probe using (user_id = app_current_user_id())",
        ],
        "lint_probe.per_row",
    ),
    "mutable_search_path": (
        ["create function lint_probe() returns int language sql as 'select 1'"],
        "lint_probe()",
    ),
    "owner_rights_view": (["create view lint_probe as select 1 as one"], "lint_probe"),
    "unindexed_foreign_key": (
        ["create table lint_probe (id int primary key, item_id bigint references media_items)"],
        "lint_probe.lint_probe_item_id_fkey",
    ),
    "duplicate_index": (
        [
            "create index lint_probe_a on media_items (title)",
            "create index lint_probe_b on media_items (title)",
        ],
        "media_items",
    ),
    "no_primary_key": (["create table lint_probe (x int)"], "lint_probe"),
}


def test_the_migrated_database_has_no_findings(db):
    assert lint() == []
    call_command("dblint", verbosity=0)


def test_every_check_has_a_plant():
    assert set(PLANTS) == set(CHECKS)


@pytest.mark.parametrize("check", sorted(PLANTS))
def test_each_check_finds_its_planted_problem(db, check):
    statements, expected_object = PLANTS[check]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)

    findings = lint()

    assert [(f.check, f.object) for f in findings] == [(check, expected_object)]
    with pytest.raises(CommandError, match="1 problem"):
        call_command("dblint", verbosity=0)


def test_a_policy_that_wraps_the_call_in_select_is_fine(db):
    with connection.cursor() as cursor:
        cursor.execute("create table lint_probe (id int primary key, user_id uuid)")
        cursor.execute("alter table lint_probe enable row level security")
        cursor.execute(
            "create policy wrapped on lint_probe using (user_id = (select app_current_user_id()))"
        )
        cursor.execute(
            "create policy setting on lint_probe using "
            "(user_id = (select current_setting('app.user_id', true))::uuid)"
        )

    assert lint() == []
