"""Moving an anonymous identity's rows into an account (docs/security.md, "Merging").

Each app registers its per-user tables in its AppConfig.ready(), one line a table:

    register_merge_table("rec_impressions")                                   # move every row
    register_merge_table("rec_outcomes", unique_with_user="event_id", on_conflict=RENAME)

A table whose rows are unique per user on some column says what happens when the account
already has a row with the same value:
- ACCOUNT_WINS: the anonymous row is dropped (assignments: the account's variant stays);
- RENAME: the anonymous row moves with the column prefixed `merged:<anonymous user id>:`
  (client event ids: both events are kept; the prefix says where the renamed one came from);
  should the prefixed value be taken too, the row is dropped.
This module imports no app above it: tables are named, never imported.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from psycopg import sql

MOVE = "move"
ACCOUNT_WINS = "account_wins"
RENAME = "rename"


@dataclass(frozen=True)
class MergeTable:
    table: str
    unique_with_user: str | None = None
    on_conflict: str = MOVE


_TABLES: dict[str, MergeTable] = {}


def register_merge_table(
    table: str, *, unique_with_user: str | None = None, on_conflict: str = MOVE
) -> None:
    """Declare a table with a `user_id` column whose rows follow an anonymous user into the
    account it signs in to."""
    if (unique_with_user is None) != (on_conflict == MOVE):
        raise ValueError(f"{table}: a unique column needs ACCOUNT_WINS or RENAME, and only it")
    if on_conflict not in (MOVE, ACCOUNT_WINS, RENAME):
        raise ValueError(f"{table}: unknown on_conflict {on_conflict!r}")
    _TABLES[table] = MergeTable(table, unique_with_user, on_conflict)


def merge_tables() -> list[MergeTable]:
    return list(_TABLES.values())


def renamed_prefix(anonymous_user_id) -> str:
    return f"merged:{anonymous_user_id}:"


def _conflict_statements(spec: MergeTable) -> list[tuple[str, sql.Composable]]:
    """(count name, statement) run before the plain move, for a table unique per user."""
    names = {"table": sql.Identifier(spec.table), "column": sql.Identifier(spec.unique_with_user)}

    def taken_by_account(value: sql.Composable) -> sql.Composable:
        return sql.SQL(
            "exists (select 1 from {table} as b "
            "where b.user_id = %(account)s and b.{column} = {value})"
        ).format(value=value, **names)

    same = taken_by_account(sql.SQL("a.{column}").format(**names))
    drop = sql.SQL("delete from {table} as a where a.user_id = %(anonymous)s and {same}").format(
        same=same, **names
    )
    if spec.on_conflict == ACCOUNT_WINS:
        return [("kept_account", drop)]
    renamed = sql.SQL("%(prefix)s || a.{column}").format(**names)
    rename = sql.SQL(
        "update {table} as a set user_id = %(account)s, {column} = {renamed} "
        "where a.user_id = %(anonymous)s and {same} and not {renamed_taken}"
    ).format(renamed=renamed, same=same, renamed_taken=taken_by_account(renamed), **names)
    return [("renamed", rename), ("dropped", drop)]


def move_rows(*, anonymous_user_id, account_id) -> dict[str, dict[str, int]]:
    """Move every registered table's rows of the anonymous user to the account, in the
    caller's transaction; returns {table: {what: count}}."""
    params = {
        "anonymous": anonymous_user_id,
        "account": account_id,
        "prefix": renamed_prefix(anonymous_user_id),
    }
    counts: dict[str, dict[str, int]] = {}
    with connection.cursor() as cursor:
        for spec in merge_tables():
            statements = _conflict_statements(spec) if spec.unique_with_user else []
            move = sql.SQL(
                "update {table} set user_id = %(account)s where user_id = %(anonymous)s"
            ).format(table=sql.Identifier(spec.table))
            result = {}
            for name, statement in [*statements, ("moved", move)]:
                cursor.execute(statement.as_string(connection.connection), params)
                result[name] = cursor.rowcount
            counts[spec.table] = result
    return counts


def count_rows(*, user_id) -> dict[str, dict[str, int]]:
    """How many rows of each registered table the user has: what a sign-up keeps."""
    counts = {}
    for spec in merge_tables():
        with connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("select count(*) from {table} where user_id = %s").format(
                    table=sql.Identifier(spec.table)
                ),
                [user_id],
            )
            counts[spec.table] = {"kept": cursor.fetchone()[0]}
    return counts
