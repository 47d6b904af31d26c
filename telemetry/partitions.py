"""Monthly partitions of the event tables (telemetry/sql/partitions.v1.sql): create the coming
months ahead of time, list them, detach (and archive) old ones. Run as the tables' owner (the
connecting user of `manage.py partitions`), never as an application role."""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime
from pathlib import Path

from django.db import DEFAULT_DB_ALIAS, ProgrammingError, connections, transaction
from psycopg import sql

from recsys_experiments.lib.errors import IllegalTransition, InvalidInput

MAX_MONTHS_AHEAD = 36  # every partition costs planning time
MONTH_RE = re.compile(r"(\d{4})-(\d{2})")


def _today() -> date:
    return datetime.now(UTC).date()


def _add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def parse_month(raw, field: str = "older_than") -> date:
    """The first day of a `YYYY-MM` month; InvalidInput for anything else."""
    match = MONTH_RE.fullmatch(raw) if isinstance(raw, str) else None
    if not match or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1970:
        raise InvalidInput({field: ["must be a month as YYYY-MM (1970-01 or later)"]})
    return date(int(match[1]), int(match[2]), 1)


def partitioned_tables(using: str = DEFAULT_DB_ALIAS) -> list[tuple[str, str]]:
    """[(table, partition column)], or [] before the partitioning migration."""
    with connections[using].cursor() as cursor:
        cursor.execute("select to_regclass('rec_partitioned_tables') is not null")
        if not cursor.fetchone()[0]:
            return []
        cursor.execute("select table_name, partition_column from rec_partitioned_tables order by 1")
        return cursor.fetchall()


def partitions_ensure(
    *, months_ahead: int, today: date | None = None, using: str = DEFAULT_DB_ALIAS
) -> list[dict]:
    """Make sure every partitioned table has the partitions of this month and the next
    `months_ahead` ones (idempotent); rows of those months waiting in the default partition
    move into theirs. Returns one dict per partition: table, partition, month, created.
    IllegalTransition when a detached partition still holds a needed month's name."""
    if (
        not isinstance(months_ahead, int)
        or isinstance(months_ahead, bool)
        or not 0 <= months_ahead <= MAX_MONTHS_AHEAD
    ):
        raise InvalidInput(
            {"months_ahead": [f"must be a whole number from 0 to {MAX_MONTHS_AHEAD}"]}
        )
    start = (today or _today()).replace(day=1)
    done = []
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        for table, _ in partitioned_tables(using):
            for offset in range(months_ahead + 1):
                month = _add_months(start, offset)
                try:
                    cursor.execute("select * from rec_partition_ensure(%s, %s)", [table, month])
                except ProgrammingError as error:  # a detached partition holds the name
                    raise IllegalTransition(str(error).splitlines()[0]) from error
                name, created = cursor.fetchone()
                done.append(
                    {
                        "table": table,
                        "partition": name,
                        "month": month.isoformat()[:7],
                        "created": created,
                    }
                )
            # Indexes added to the parent since the last run get their partition names.
            cursor.execute("select rec_partition_name_indexes(%s)", [table])
    return done


_LIST_SQL = """
select parent.relname, child.relname,
       pg_get_expr(child.relpartbound, child.oid),
       greatest(child.reltuples, 0)::bigint,
       pg_total_relation_size(child.oid)
from pg_inherits as i
join pg_class as parent on parent.oid = i.inhparent
join pg_class as child on child.oid = i.inhrelid
where parent.relname = any(%s) and child.relkind = 'r'
order by parent.relname, child.relname
"""
_BOUND_RE = re.compile(r"FOR VALUES FROM \('([^']*)'\) TO \('([^']*)'\)")


def partitions_list(using: str = DEFAULT_DB_ALIAS) -> list[dict]:
    """Every partition: table, partition, from and to (None for the default partition),
    estimated rows (as of the last ANALYZE) and bytes on disk."""
    tables = [table for table, _ in partitioned_tables(using)]
    with connections[using].cursor() as cursor:
        cursor.execute(_LIST_SQL, [tables])
        rows = cursor.fetchall()
    listed = []
    for table, partition, bound, estimate, size in rows:
        match = _BOUND_RE.match(bound or "")
        listed.append(
            {
                "table": table,
                "partition": partition,
                "from": match[1] if match else None,
                "to": match[2] if match else None,
                "rows_estimate": estimate,
                "bytes": size,
            }
        )
    return listed


def _check_archive_dir(raw) -> Path:
    if not isinstance(raw, str) or not raw or "\x00" in raw:
        raise InvalidInput({"archive_dir": ["must be the path of a directory"]})
    path = Path(raw)
    if not path.is_dir():
        raise InvalidInput({"archive_dir": [f"{raw} is not a directory"]})
    if not os.access(path, os.W_OK | os.X_OK):
        raise InvalidInput({"archive_dir": [f"{raw} is not writable"]})
    return path


def partitions_detach(
    *,
    older_than,
    archive_dir: str | None = None,
    today: date | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> list[dict]:
    """Detach every month partition that ends on or before the first day of `older_than`
    (YYYY-MM; at the latest the current month): its rows leave the tables, the views and
    results. Their event keys are forgotten (a replay of one of those events is stored
    again). With `archive_dir`, each is written there as `<partition>.csv` (COPY, with a
    header) and dropped; without, it stays as a plain table of the same name. Each partition
    is one transaction: a failed write leaves it attached."""
    cutoff = parse_month(older_than)
    current = (today or _today()).replace(day=1)
    if cutoff > current:
        raise InvalidInput(
            {"older_than": [f"must not be after the current month ({current.isoformat()[:7]})"]}
        )
    directory = _check_archive_dir(archive_dir) if archive_dir is not None else None
    cutoff_at = datetime(cutoff.year, cutoff.month, 1, tzinfo=UTC)
    old = [
        p
        for p in partitions_list(using)
        if p["to"] is not None and datetime.fromisoformat(p["to"]) <= cutoff_at
    ]
    if directory is not None:
        taken = [p["partition"] for p in old if (directory / f"{p['partition']}.csv").exists()]
        if taken:
            raise InvalidInput(
                {"archive_dir": [f"{directory / (taken[0] + '.csv')} exists: not overwritten"]}
            )
    keyed = _keyed_tables(using)
    done = []
    for partition in old:
        table, name = partition["table"], partition["partition"]
        names = {"table": sql.Identifier(table), "partition": sql.Identifier(name)}

        def run(cursor, statement: str, params=(), names=names):
            cursor.execute(
                sql.SQL(statement).format(**names).as_string(connections[using].connection),
                params,
            )

        with transaction.atomic(using=using), connections[using].cursor() as cursor:
            # Deferred foreign-key checks pending on the partition would block its drop.
            run(cursor, "set constraints all immediate")
            run(cursor, "alter table {table} detach partition {partition}")
            if table in keyed:
                run(
                    cursor,
                    "delete from rec_event_keys as k using {partition} as p "
                    "where k.table_name = %s and k.user_id = p.user_id "
                    "and k.event_id = p.event_id",
                    [table],
                )
            run(cursor, "select count(*) from {partition}")
            rows = cursor.fetchone()[0]
            archive = None
            if directory is not None:
                archive = directory / f"{name}.csv"
                _copy_out(using, name, archive)
                run(cursor, "drop table {partition}")
        done.append(
            {
                **partition,
                "rows": rows,
                "archive": str(archive) if archive else None,
                "dropped": archive is not None,
            }
        )
    return done


def _keyed_tables(using: str) -> set[str]:
    with connections[using].cursor() as cursor:
        cursor.execute("select table_name from rec_partitioned_tables where original ? 'event_key'")
        return {row[0] for row in cursor.fetchall()}


def _copy_out(using: str, partition: str, path: Path) -> None:
    """COPY the (detached) partition into `path`, written to a temporary name, flushed to
    disk and renamed: the file exists whole or not at all."""
    partial = path.with_name(path.name + ".partial")
    raw = connections[using].connection
    try:
        with open(partial, "xb") as out, raw.cursor() as cursor:
            statement = sql.SQL("copy {} to stdout with (format csv, header)").format(
                sql.Identifier(partition)
            )
            with cursor.copy(statement) as copy:
                for chunk in copy:
                    out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
