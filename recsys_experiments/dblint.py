"""Database lint: the classic PostgreSQL security and performance findings (Supabase's
linter's checks, for our stack), read from the catalogue of the public schema.

Each check is one query returning (object, detail) rows. `lint()` runs them all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.db import connection

# Tables named here hold user data even without a user_id column.
USER_DATA_TABLES = ("accounts_user", "rec_experiments", "rec_experiment_audit_log")

CHECKS = {
    "rls_disabled": (
        "a table holding user data (a user_id column, or a known user table) without RLS",
        """
        select c.relname, 'row level security is disabled'
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity
          and (c.relname = any(%(user_data_tables)s) or exists (
              select 1 from pg_attribute a
              where a.attrelid = c.oid and a.attname = 'user_id' and not a.attisdropped))
        order by 1
        """,
    ),
    "rls_without_policy": (
        "RLS enabled but no policy: every non-owner is locked out, probably by mistake",
        """
        select c.relname, 'row level security is enabled but the table has no policy'
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p') and c.relrowsecurity
          and not exists (select 1 from pg_policy p where p.polrelid = c.oid)
        order by 1
        """,
    ),
    "per_row_auth_call": (
        "a policy calls the user-id function or current_setting() per row: wrap it in (select ...)",
        """
        select p.tablename || '.' || p.policyname, 'calls ' || m[1] || ' per row'
        from pg_policies p,
             lateral (select concat_ws(' ', p.qual, p.with_check) as expr) e,
             lateral regexp_matches(
                 regexp_replace(e.expr,
                     '\\(\\s*SELECT\\s+(app_current_user_id\\(\\)|current_setting\\([^)]*\\))[^)]*\\)',
                     '', 'gi'),
                 '(app_current_user_id\\(\\)|current_setting\\()', 'i') as m
        where p.schemaname = 'public'
        order by 1
        """,
    ),
    "mutable_search_path": (
        "a function without a fixed search_path (hijackable by objects in other schemas)",
        """
        select p.oid::regprocedure::text, 'search_path is not set on the function'
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and p.prokind in ('f', 'p')
          and not exists (select 1 from pg_depend d
                          where d.objid = p.oid and d.deptype = 'e')
          and not coalesce(
              exists (select 1 from unnest(p.proconfig) c where c like 'search_path=%%'), false)
        order by 1
        """,
    ),
    "owner_rights_view": (
        "a view running with its owner's rights (not security_invoker): it bypasses RLS",
        """
        select c.relname, 'security_invoker is not set'
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('v', 'm')
          and not coalesce(
              exists (select 1 from unnest(c.reloptions) o
                      where o in ('security_invoker=true', 'security_invoker=on',
                                  'security_invoker=1')), false)
        order by 1
        """,
    ),
    "unindexed_foreign_key": (
        "a foreign key whose columns lead no index: deletes and joins scan the table",
        """
        select c.conrelid::regclass::text || '.' || c.conname,
               'no index starts with (' || (
                   select string_agg(a.attname, ', ' order by k.ord)
                   from unnest(c.conkey) with ordinality k(attnum, ord)
                   join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum
               ) || ')'
        from pg_constraint c join pg_namespace n on n.oid = c.connamespace
        where c.contype = 'f' and n.nspname = 'public'
          and not exists (
              select 1 from pg_index i
              where i.indrelid = c.conrelid
                and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
                and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey)
        order by 1
        """,
    ),
    "duplicate_index": (
        "two indexes with the same definition: one is pure write and storage cost",
        """
        select i.indrelid::regclass::text,
               string_agg(i.indexrelid::regclass::text, ' = ' order by i.indexrelid::regclass::text)
        from pg_index i
        join pg_class c on c.oid = i.indrelid
        join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public'
        group by i.indrelid, i.indkey::text, i.indclass::text, i.indcollation::text,
                 coalesce(pg_get_expr(i.indexprs, i.indrelid), ''),
                 coalesce(pg_get_expr(i.indpred, i.indrelid), '')
        having count(*) > 1
        order by 1
        """,
    ),
    "no_primary_key": (
        "a table without a primary key",
        """
        select c.relname, 'the table has no primary key'
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p')
          and not exists (select 1 from pg_constraint k
                          where k.conrelid = c.oid and k.contype = 'p')
        order by 1
        """,
    ),
}


@dataclass(frozen=True)
class Finding:
    check: str
    object: str
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


def lint() -> list[Finding]:
    findings = []
    with connection.cursor() as cursor:
        for check, (_, query) in CHECKS.items():
            cursor.execute(query, {"user_data_tables": list(USER_DATA_TABLES)})
            findings += [Finding(check, name, detail) for name, detail in cursor.fetchall()]
    return findings
