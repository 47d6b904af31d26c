-- Monthly range partitioning of the four event tables (docs/scaling.md, "Partitioning").
--   rec_impressions by created_at, rec_outcomes by created_at (its arrival day, what the
--   health views count by), rec_conversions and rec_exposures by occurred_at (what results
--   filter on). Partitions are <table>_pYYYYMM for [first of the month, first of the next)
--   in UTC, plus <table>_default for rows no partition covers.
-- A unique constraint on a partitioned table must hold the partition column, so the per-user
-- client event id (user_id, event_id) is kept unique by rec_event_keys, a plain table the
-- trigger rec_event_key_claim() fills: an INSERT of a key already stored skips the row (as the
-- former `on conflict (user_id, event_id) do nothing` did), an UPDATE onto a stored key fails
-- with unique_violation under the former constraint's name.
-- Everything below is generic: the conversion reads the table's columns, indexes,
-- constraints, policies, grants, triggers and comments from the catalogue, and the views
-- depending on the tables (at any depth) are saved, dropped and recreated with their options,
-- grants and comments. The reverse (partitions.v1.down.sql) restores plain tables the same way.

-- Which tables are partitioned, by which column, and what their original constraints were.
create table rec_partitioned_tables (
    table_name text primary key,
    partition_column text not null,
    original jsonb not null default '{}'::jsonb
);
comment on table rec_partitioned_tables is
    'Tables range-partitioned by month (telemetry partitions.v1): manage.py partitions reads it';

-- One row per stored client event id: what keeps (user_id, event_id) unique across partitions.
create table rec_event_keys (
    table_name text not null,
    user_id uuid not null,
    event_id text not null,
    primary key (table_name, user_id, event_id)
);
comment on table rec_event_keys is
    'Stored (user_id, event_id) of the partitioned event tables: their uniqueness (partitions.v1)';
alter table rec_event_keys enable row level security;
create policy rec_event_keys_service_all on rec_event_keys
    for all to recsys_service using (true) with check (true);
revoke all on rec_event_keys from recsys_authenticated;

-- BEFORE INSERT OR UPDATE OF user_id, event_id, per row; TG_ARGV: the parent table and the
-- name of the unique constraint it replaces. A key already claimed counts only while a row
-- holds it (a stale key, left by a delete, a truncate or a row moving between partitions,
-- is claimed again). Security definer: end users have no rights on rec_event_keys.
create or replace function rec_event_key_claim() returns trigger
language plpgsql volatile security definer
set search_path = public, pg_temp
as $$
declare
    present boolean;
begin
    if tg_op = 'UPDATE' and new.user_id = old.user_id and new.event_id = old.event_id then
        return new;
    end if;
    insert into rec_event_keys (table_name, user_id, event_id)
    values (tg_argv[0], new.user_id, new.event_id)
    on conflict do nothing;
    if not found then
        execute format('select exists (select 1 from %I where user_id = $1 and event_id = $2)',
                       tg_argv[0])
            into present using new.user_id, new.event_id;
        if present then
            if tg_op = 'INSERT' then
                return null;  -- a repeat: stored once
            end if;
            raise exception 'duplicate key value violates unique constraint "%"', tg_argv[1]
                using errcode = 'unique_violation', constraint = tg_argv[1],
                      detail = format('Key (user_id, event_id)=(%s, %s) already exists.',
                                      new.user_id, new.event_id);
        end if;
    end if;
    if tg_op = 'UPDATE' then
        delete from rec_event_keys
        where table_name = tg_argv[0] and user_id = old.user_id and event_id = old.event_id;
    end if;
    return new;
end
$$;
revoke execute on function rec_event_key_claim() from public;

-- Enable RLS on a partition with copies of its parent's policies, and take every right of the
-- end-user role: partitions are read and written through their parent only.
create or replace function rec_partition_secure(p_parent text, p_partition text) returns void
language plpgsql volatile
set search_path = public, pg_temp
as $$
declare
    pol record;
begin
    execute format('alter table %I enable row level security', p_partition);
    for pol in
        select p.polname, p.polpermissive, p.polcmd,
               (select coalesce(string_agg(case when r = 0 then 'public'
                                                else quote_ident(r::regrole::text) end, ', '),
                                'public')
                from unnest(p.polroles) as r) as roles,
               pg_get_expr(p.polqual, p.polrelid) as qual,
               pg_get_expr(p.polwithcheck, p.polrelid) as with_check
        from pg_policy as p
        where p.polrelid = p_parent::regclass
          and not exists (select 1 from pg_policy as q
                          where q.polrelid = p_partition::regclass and q.polname = p.polname)
    loop
        execute format('create policy %I on %I as %s for %s to %s%s%s',
            pol.polname, p_partition,
            case when pol.polpermissive then 'permissive' else 'restrictive' end,
            case pol.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update'
                            when 'd' then 'delete' else 'all' end,
            pol.roles,
            coalesce(' using (' || pol.qual || ')', ''),
            coalesce(' with check (' || pol.with_check || ')', ''));
    end loop;
    execute format('revoke all on %I from public', p_partition);
    if exists (select 1 from pg_roles where rolname = 'recsys_authenticated') then
        execute format('revoke all on %I from recsys_authenticated', p_partition);
    end if;
end
$$;
revoke execute on function rec_partition_secure(text, text) from public;

-- Name every partition's index after its parent index: <parent index>_<pYYYYMM|default>
-- (cut to fit 63 bytes), so that a plan shows which index of which month it reads.
create or replace function rec_partition_name_indexes(p_parent text) returns integer
language plpgsql volatile
set search_path = public, pg_temp
as $$
declare
    r record;
    renamed integer := 0;
begin
    for r in
        select child.relname as current_name,
               left(parent.relname, 62 - length(suffix)) || '_' || suffix as wanted
        from pg_inherits as part
        join pg_class as tbl on tbl.oid = part.inhrelid
        cross join lateral substr(tbl.relname, length(p_parent) + 2) as suffix
        join pg_index as ci on ci.indrelid = part.inhrelid
        join pg_class as child on child.oid = ci.indexrelid
        join pg_inherits as link on link.inhrelid = ci.indexrelid
        join pg_class as parent on parent.oid = link.inhparent
        where part.inhparent = p_parent::regclass
    loop
        if r.current_name <> r.wanted and to_regclass(quote_ident(r.wanted)) is null then
            execute format('alter index %I rename to %I', r.current_name, r.wanted);
            renamed := renamed + 1;
        end if;
    end loop;
    return renamed;
end
$$;
revoke execute on function rec_partition_name_indexes(text) from public;

-- The month partition of `p_table` holding `p_month` (any day of it): created when missing,
-- taking over the rows the default partition holds for that month. Returns its name, and
-- whether it was created. Errors: a table of that name that is not the partition.
create or replace function rec_partition_ensure(p_table text, p_month date,
                                                out partition_name text, out created boolean)
language plpgsql volatile
set search_path = public, pg_temp
as $$
declare
    col text;
    month_start date := date_trunc('month', p_month)::date;
    lo timestamptz;
    hi timestamptz;
    default_name text := p_table || '_default';
    moving boolean;
begin
    select t.partition_column into col from rec_partitioned_tables as t
    where t.table_name = p_table;
    if col is null then
        raise exception '% is not a partitioned event table', p_table
            using errcode = 'invalid_parameter_value';
    end if;
    partition_name := p_table || '_p' || to_char(month_start, 'YYYYMM');
    lo := month_start::timestamp at time zone 'UTC';
    hi := (month_start + interval '1 month')::timestamp at time zone 'UTC';
    created := false;
    if to_regclass(quote_ident(partition_name)) is not null then
        if not exists (select 1 from pg_inherits
                       where inhrelid = to_regclass(quote_ident(partition_name))
                         and inhparent = p_table::regclass) then
            raise exception 'table % exists but is not a partition of % (detached?)',
                partition_name, p_table using errcode = 'duplicate_table';
        end if;
        return;
    end if;
    moving := to_regclass(quote_ident(default_name)) is not null;
    if moving then
        execute format('select exists (select 1 from %I where %I >= $1 and %I < $2)',
                       default_name, col, col)
            into moving using lo, hi;
    end if;
    if moving then
        -- The default partition holds rows of this month: move them into a new table, then
        -- attach it (attaching checks the default partition no longer holds any).
        execute format('create table %I (like %I including defaults including constraints '
                       'including storage including generated)', partition_name, p_table);
        execute format('with moved as (delete from %I where %I >= $1 and %I < $2 returning *) '
                       'insert into %I select * from moved',
                       default_name, col, col, partition_name) using lo, hi;
        execute format('alter table %I attach partition %I for values from (%L) to (%L)',
                       p_table, partition_name, lo, hi);
    else
        execute format('create table %I partition of %I for values from (%L) to (%L)',
                       partition_name, p_table, lo, hi);
    end if;
    perform rec_partition_secure(p_table, partition_name);
    perform rec_partition_name_indexes(p_table);
    created := true;
end
$$;
revoke execute on function rec_partition_ensure(text, date) from public;

-- Save every view and materialized view depending (at any depth) on `p_tables` into the
-- transaction's temporary table _rec_saved_views, then drop them (deepest first, without
-- cascade: anything else depending on them stops the migration instead of vanishing).
create or replace function rec_views_save(p_tables text[]) returns integer
language plpgsql volatile
set search_path = public, pg_temp
as $$
declare
    v record;
    saved integer;
begin
    create temporary table if not exists _rec_saved_views (
        name text primary key,
        kind "char",
        depth integer,
        definition text,
        options text[],
        acl aclitem[],
        comment text,
        extras text[]
    ) on commit drop;
    with recursive dependents(oid, depth) as (
        select distinct r.ev_class, 1
        from pg_depend as d
        join pg_rewrite as r on r.oid = d.objid
        where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
          and d.refobjid = any (select to_regclass(quote_ident(t))::oid from unnest(p_tables) t)
          and r.ev_class <> d.refobjid
        union
        select r.ev_class, dependents.depth + 1
        from dependents
        join pg_depend as d on d.refobjid = dependents.oid and d.refclassid = 'pg_class'::regclass
                           and d.classid = 'pg_rewrite'::regclass
        join pg_rewrite as r on r.oid = d.objid
        where r.ev_class <> dependents.oid and dependents.depth < 50
    ),
    deepest as (
        select dependents.oid, max(dependents.depth) as depth from dependents group by 1
    )
    insert into _rec_saved_views
    select c.relname, c.relkind, dep.depth, pg_get_viewdef(c.oid), c.reloptions, c.relacl,
           obj_description(c.oid, 'pg_class'),
           array(
               select format('comment on column %I.%I is %L', c.relname, a.attname,
                             col_description(c.oid, a.attnum))
               from pg_attribute as a
               where a.attrelid = c.oid and a.attnum > 0
                 and col_description(c.oid, a.attnum) is not null
               union all
               select pg_get_indexdef(i.indexrelid) from pg_index as i where i.indrelid = c.oid
           )
    from deepest as dep
    join pg_class as c on c.oid = dep.oid
    join pg_namespace as n on n.oid = c.relnamespace and n.nspname = 'public'
    on conflict (name) do nothing;
    for v in select * from _rec_saved_views order by depth desc, name loop
        if to_regclass(quote_ident(v.name)) is not null then
            execute format('drop %s %I', case v.kind when 'm' then 'materialized view'
                                                     else 'view' end, v.name);
        end if;
    end loop;
    select count(*) into saved from _rec_saved_views;
    return saved;
end
$$;
revoke execute on function rec_views_save(text[]) from public;

-- Recreate what rec_views_save saved, shallowest first, with options, grants and comments.
create or replace function rec_views_restore() returns integer
language plpgsql volatile
set search_path = public, pg_temp
as $$
declare
    v record;
    g record;
    stmt text;
    restored integer := 0;
begin
    if to_regclass('pg_temp._rec_saved_views') is null then
        return 0;
    end if;
    for v in select * from _rec_saved_views order by depth, name loop
        execute format('create %s %I%s as %s',
            case v.kind when 'm' then 'materialized view' else 'view' end, v.name,
            case when v.options is null then ''
                 else ' with (' || array_to_string(v.options, ', ') || ')' end,
            rtrim(rtrim(v.definition), ';'));
        for g in
            select a.grantee, a.privilege_type, a.is_grantable
            from aclexplode(v.acl) as a
            where a.grantee <> (select c.relowner from pg_class c where c.oid = v.name::regclass)
        loop
            execute format('grant %s on %I to %s%s', g.privilege_type, v.name,
                case when g.grantee = 0 then 'public' else quote_ident(g.grantee::regrole::text) end,
                case when g.is_grantable then ' with grant option' else '' end);
        end loop;
        if v.comment is not null then
            execute format('comment on %s %I is %L',
                case v.kind when 'm' then 'materialized view' else 'view' end, v.name, v.comment);
        end if;
        foreach stmt in array v.extras loop
            execute stmt;
        end loop;
        restored := restored + 1;
    end loop;
    drop table _rec_saved_views;
    return restored;
end
$$;
revoke execute on function rec_views_restore() from public;

-- The statements that give `p_target` the security of `p_source` (RLS flags, policies,
-- grants) and its comment: run on the new table after a conversion.
create or replace function rec_table_security_statements(p_source regclass, p_target text)
returns text[]
language sql stable
set search_path = public, pg_temp
as $$
    select array(
        select s from (
            select 1 as o, format('alter table %I enable row level security', p_target) as s
            from pg_class where oid = p_source and relrowsecurity
            union all
            select 2, format('alter table %I force row level security', p_target)
            from pg_class where oid = p_source and relforcerowsecurity
            union all
            select 3, format('create policy %I on %I as %s for %s to %s%s%s',
                p.polname, p_target,
                case when p.polpermissive then 'permissive' else 'restrictive' end,
                case p.polcmd when 'r' then 'select' when 'a' then 'insert'
                              when 'w' then 'update' when 'd' then 'delete' else 'all' end,
                (select coalesce(string_agg(case when r = 0 then 'public'
                                                 else quote_ident(r::regrole::text) end, ', '),
                                 'public') from unnest(p.polroles) as r),
                coalesce(' using (' || pg_get_expr(p.polqual, p.polrelid) || ')', ''),
                coalesce(' with check (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', ''))
            from pg_policy as p where p.polrelid = p_source
            union all
            select 4, format('grant %s on %I to %s%s', a.privilege_type, p_target,
                case when a.grantee = 0 then 'public'
                     else quote_ident(a.grantee::regrole::text) end,
                case when a.is_grantable then ' with grant option' else '' end)
            from pg_class as c, aclexplode(c.relacl) as a
            where c.oid = p_source and a.grantee <> c.relowner
            union all
            select 5, format('comment on table %I is %L', p_target,
                             obj_description(p_source, 'pg_class'))
            where obj_description(p_source, 'pg_class') is not null
        ) as x order by o
    )
$$;
revoke execute on function rec_table_security_statements(regclass, text) from public;

-- The columns to copy (generated columns are computed again).
create or replace function rec_copy_columns(p_table regclass) returns text
language sql stable
set search_path = public, pg_temp
as $$
    select string_agg(quote_ident(a.attname), ', ' order by a.attnum)
    from pg_attribute as a
    where a.attrelid = p_table and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
$$;
revoke execute on function rec_copy_columns(regclass) from public;

-- Copy every identity sequence's state from one table to another (same column names).
create or replace function rec_copy_identity(p_from regclass, p_to regclass) returns void
language plpgsql volatile
set search_path = public, pg_temp
as $$
declare
    a record;
    last bigint;
    called boolean;
begin
    for a in select attname from pg_attribute
             where attrelid = p_from and attidentity <> '' and not attisdropped loop
        execute format('select last_value, is_called from %s',
                       pg_get_serial_sequence(p_from::text, a.attname))
            into last, called;
        perform setval(pg_get_serial_sequence(p_to::text, a.attname), last, called);
    end loop;
end
$$;
revoke execute on function rec_copy_identity(regclass, regclass) from public;

-- Rename the identity sequences of `p_table` to <table>_<column>_seq (the names a plain
-- table's identity columns have), once the old table holding those names is gone.
create or replace function rec_rename_identity(p_table regclass) returns void
language plpgsql volatile
set search_path = public, pg_temp
as $$
declare
    a record;
    seq text;
begin
    for a in select attname from pg_attribute
             where attrelid = p_table and attidentity <> '' and not attisdropped loop
        seq := pg_get_serial_sequence(p_table::text, a.attname);
        if seq::regclass::text <> format('%s_%s_seq', p_table::text, a.attname) then
            execute format('alter sequence %s rename to %I', seq,
                           format('%s_%s_seq', p_table::text, a.attname));
        end if;
    end loop;
end
$$;
revoke execute on function rec_rename_identity(regclass) from public;

-- Convert the plain table `p_table` into one partitioned by month on `p_column`, keeping its
-- rows, columns, defaults, identity, checks, foreign keys, indexes, triggers, policies, grants
-- and comments. The primary key gains the partition column; the unique constraint on
-- (user_id, event_id) becomes a plain index plus rec_event_keys (above); any other unique
-- constraint without the partition column stops the conversion. Partitions: every month with
-- rows in the last `p_months_back` months up to `p_months_ahead` after this one, plus the
-- default partition (older rows). Views depending on the table must be saved first.
create or replace function rec_partition_convert(p_table text, p_column text,
                                                 p_months_back integer default 24,
                                                 p_months_ahead integer default 2)
returns void
language plpgsql volatile
set search_path = public, pg_temp
as $$
declare
    old_name text := left(p_table, 40) || '__unpartitioned';
    tbl regclass := p_table::regclass;
    r record;
    after_copy text[] := '{}';
    security text[];
    stmt text;
    original jsonb := '{}'::jsonb;
    event_key text;
    first_month date;
    m date;
    cols text;
begin
    if exists (select 1 from pg_class where oid = tbl and relkind = 'p') then
        return;  -- already partitioned
    end if;
    -- Indexes that back no constraint: same definition and name on the new parent. A unique
    -- one must hold the partition column.
    for r in
        select c.relname, pg_get_indexdef(i.indexrelid) as def, i.indisunique,
               exists (select 1 from pg_attribute a
                       where a.attrelid = tbl and a.attname = p_column
                         and a.attnum = any (i.indkey::int2[])) as has_column
        from pg_index as i join pg_class as c on c.oid = i.indexrelid
        where i.indrelid = tbl
          and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid
                          and k.conrelid = tbl)
    loop
        if r.indisunique and not r.has_column then
            raise exception 'unique index % of % lacks the partition column %',
                r.relname, p_table, p_column;
        end if;
        after_copy := after_copy || r.def;
        execute format('drop index %I', r.relname);
    end loop;
    -- Constraints other than checks and not-nulls (LIKE copies those).
    for r in
        select k.conname, k.contype, pg_get_constraintdef(k.oid) as def,
               array(select a.attname::text from unnest(k.conkey) with ordinality as u(n, o)
                     join pg_attribute as a on a.attrelid = tbl and a.attnum = u.n
                     order by u.o) as columns
        from pg_constraint as k
        where k.conrelid = tbl and k.contype in ('p', 'u', 'f', 'x')
        order by k.contype desc
    loop
        if r.contype = 'p' then
            original := jsonb_set(original, '{primary_key}',
                                  jsonb_build_object('name', r.conname, 'definition', r.def));
            after_copy := format('alter table %I add constraint %I primary key (%s)',
                p_table, r.conname,
                array_to_string(array(select quote_ident(c) from unnest(
                    r.columns || case when p_column = any (r.columns) then '{}'::text[]
                                      else array[p_column] end) as c), ', '))
                || after_copy;
        elsif r.contype = 'u' and p_column = any (r.columns) then
            after_copy := after_copy || format('alter table %I add constraint %I %s',
                                               p_table, r.conname, r.def);
        elsif r.contype = 'u' and r.columns = array['user_id', 'event_id'] then
            event_key := r.conname;
            original := jsonb_set(original, '{event_key}',
                                  jsonb_build_object('name', r.conname, 'definition', r.def));
            after_copy := after_copy || format('create index %I on %I (user_id, event_id)',
                                               r.conname, p_table);
        elsif r.contype = 'u' or r.contype = 'x' then
            raise exception 'constraint % of % lacks the partition column %',
                r.conname, p_table, p_column;
        else
            after_copy := after_copy || format('alter table %I add constraint %I %s',
                                               p_table, r.conname, r.def);
        end if;
        execute format('alter table %I drop constraint %I', p_table, r.conname);
    end loop;
    -- Triggers: created after the copy, so that they do not fire for the copied rows.
    for r in select t.tgname, pg_get_triggerdef(t.oid) as def from pg_trigger as t
             where t.tgrelid = tbl and not t.tgisinternal loop
        after_copy := after_copy || r.def;
        execute format('drop trigger %I on %I', r.tgname, p_table);
    end loop;
    security := rec_table_security_statements(tbl, p_table);

    execute format('alter table %I rename to %I', p_table, old_name);
    execute format('create table %I (like %I including defaults including constraints '
                   'including identity including generated including comments '
                   'including storage including statistics) partition by range (%I)',
                   p_table, old_name, p_column);
    -- Policies first: each partition gets copies of them.
    foreach stmt in array security loop
        execute stmt;
    end loop;
    insert into rec_partitioned_tables (table_name, partition_column, original)
    values (p_table, p_column, original);
    execute format('select date_trunc(''month'', min(%I) at time zone ''UTC'')::date from %I',
                   p_column, old_name)
        into first_month;
    first_month := greatest(
        coalesce(first_month, current_date),
        (date_trunc('month', now() at time zone 'UTC') - make_interval(months => p_months_back))::date);
    for m in select generate_series(first_month::timestamp,
                                    date_trunc('month', now() at time zone 'UTC')
                                    + make_interval(months => p_months_ahead),
                                    interval '1 month')::date loop
        perform rec_partition_ensure(p_table, m);
    end loop;
    execute format('create table %I partition of %I default', p_table || '_default', p_table);
    perform rec_partition_secure(p_table, p_table || '_default');

    cols := rec_copy_columns(old_name::regclass);
    execute format('insert into %I (%s) overriding system value select %s from %I',
                   p_table, cols, cols, old_name);
    perform rec_copy_identity(old_name::regclass, p_table::regclass);
    foreach stmt in array after_copy loop
        execute stmt;
    end loop;
    if event_key is not null then
        execute format('insert into rec_event_keys (table_name, user_id, event_id) '
                       'select %L, user_id, event_id from %I on conflict do nothing',
                       p_table, p_table);
        execute format('create trigger %I before insert or update of user_id, event_id on %I '
                       'for each row execute function rec_event_key_claim(%L, %L)',
                       p_table || '_event_key', p_table, p_table, event_key);
    end if;
    execute format('drop table %I', old_name);
    perform rec_rename_identity(p_table::regclass);
    perform rec_partition_name_indexes(p_table);
end
$$;
revoke execute on function rec_partition_convert(text, text, integer, integer) from public;

-- The reverse: a plain table again, with every row of the parent (detached partitions are
-- left as they are), the original primary key and (user_id, event_id) unique constraint.
create or replace function rec_partition_revert(p_table text) returns void
language plpgsql volatile
set search_path = public, pg_temp
as $$
declare
    old_name text := left(p_table, 40) || '__partitioned';
    tbl regclass := to_regclass(quote_ident(p_table));
    original jsonb;
    r record;
    after_copy text[] := '{}';
    stmt text;
    cols text;
begin
    select t.original into original from rec_partitioned_tables as t
    where t.table_name = p_table;
    if tbl is null or original is null then
        return;
    end if;
    for r in
        select c.relname, replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ') as def
        from pg_index as i join pg_class as c on c.oid = i.indexrelid
        where i.indrelid = tbl
          and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid
                          and k.conrelid = tbl)
    loop
        if r.relname = original #>> '{event_key,name}' then
            after_copy := after_copy || format('alter table %I add constraint %I %s',
                p_table, r.relname, original #>> '{event_key,definition}');
        else
            after_copy := after_copy || r.def;
        end if;
        execute format('drop index %I', r.relname);
    end loop;
    for r in
        select k.conname, k.contype, pg_get_constraintdef(k.oid) as def
        from pg_constraint as k
        where k.conrelid = tbl and k.contype in ('p', 'u', 'f', 'x') and k.conparentid = 0
        order by k.contype desc
    loop
        if r.contype = 'p' and original ? 'primary_key' then
            after_copy := format('alter table %I add constraint %I %s', p_table,
                                 original #>> '{primary_key,name}',
                                 original #>> '{primary_key,definition}') || after_copy;
        else
            after_copy := after_copy || format('alter table %I add constraint %I %s',
                                               p_table, r.conname, r.def);
        end if;
        execute format('alter table %I drop constraint %I', p_table, r.conname);
    end loop;
    for r in select t.tgname, pg_get_triggerdef(t.oid) as def from pg_trigger as t
             where t.tgrelid = tbl and not t.tgisinternal and t.tgparentid = 0 loop
        if r.tgname <> p_table || '_event_key' then
            after_copy := after_copy || r.def;
        end if;
        execute format('drop trigger %I on %I', r.tgname, p_table);
    end loop;
    after_copy := after_copy || rec_table_security_statements(tbl, p_table);

    execute format('alter table %I rename to %I', p_table, old_name);
    execute format('create table %I (like %I including defaults including constraints '
                   'including identity including generated including comments '
                   'including storage including statistics)', p_table, old_name);
    cols := rec_copy_columns(old_name::regclass);
    execute format('insert into %I (%s) overriding system value select %s from %I',
                   p_table, cols, cols, old_name);
    perform rec_copy_identity(old_name::regclass, p_table::regclass);
    foreach stmt in array after_copy loop
        execute stmt;
    end loop;
    execute format('drop table %I', old_name);
    perform rec_rename_identity(p_table::regclass);
    delete from rec_event_keys where table_name = p_table;
    delete from rec_partitioned_tables where table_name = p_table;
end
$$;
revoke execute on function rec_partition_revert(text) from public;

-- The conversion of the four tables, their dependent views saved and recreated around it.
select rec_views_save(array['rec_impressions', 'rec_outcomes', 'rec_conversions',
                            'rec_exposures']);
select rec_partition_convert('rec_impressions', 'created_at');
select rec_partition_convert('rec_outcomes', 'created_at');
select rec_partition_convert('rec_conversions', 'occurred_at');
select rec_partition_convert('rec_exposures', 'occurred_at');
select rec_views_restore();
