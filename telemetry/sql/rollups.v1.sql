-- Daily rollups (issue 17 §1): per COMPLETE UTC day, what the daily views and the results
-- read instead of the raw events. Written only by rec_rollup_day() (security definer, run by
-- `manage.py rollup` and on demand by the results); read by the service role. End users have
-- no grant on any of these tables.
--
-- The rolled days are contiguous: rec_rollup_days holds one row per day from the first day
-- with events through the watermark (its greatest day). A day after the watermark, or a
-- dirty one, is read raw. An insert, update or delete of an event on a rolled (or earlier)
-- day marks that day dirty (statement triggers below), so every answer stays exact; the next
-- rollup (or the next read of that day) re-rolls it. An outcome belongs to the day of its
-- impression (as in rec_impression_outcomes_v1), a conversion and an exposure to the day of
-- their occurred_at, an impression to the day of its created_at.

create table rec_rollup_days (
    day date primary key,
    rolled_at timestamptz,
    dirty boolean not null default false
);
create index idx_rec_rollup_days_dirty on rec_rollup_days (day) where dirty;

-- Per day, experiment (a key of request_context.experiments), variant and user. The outcome
-- columns come twice: `likes`.. `rating_sum` count per impression (the daily views'
-- definition: an item served twice in a request counts its outcomes twice) and
-- `<type>_events` / `<type>_sum` once per served (request, item) (the results' definition).
create table rec_daily_user_rollups (
    day date not null,
    experiment_key text not null,
    variant text not null,
    user_id uuid not null,
    impressions bigint not null default 0,
    requests bigint not null default 0,
    first_at timestamptz,
    likes bigint not null default 0,
    dislikes bigint not null default 0,
    watchlists bigint not null default 0,
    ratings bigint not null default 0,
    rating_sum float8,
    detail_opens bigint not null default 0,
    like_events bigint not null default 0,
    like_sum float8 not null default 0,
    dislike_events bigint not null default 0,
    dislike_sum float8 not null default 0,
    watchlist_events bigint not null default 0,
    watchlist_sum float8 not null default 0,
    rating_events bigint not null default 0,
    rating_sum_once float8 not null default 0,
    detail_open_events bigint not null default 0,
    detail_open_sum float8 not null default 0,
    last_outcome_at timestamptz,
    exposures bigint not null default 0,
    primary key (experiment_key, day, variant, user_id)
);
create index idx_rec_daily_user_rollups_user on rec_daily_user_rollups (user_id, day);

-- Per day and user, all their impressions (tagged or not): the CUPED pre-period's counts
-- and the daily like rate of the alerts.
create table rec_daily_user_totals (
    day date not null,
    user_id uuid not null,
    impressions bigint not null default 0,
    likes bigint not null default 0,
    like_events bigint not null default 0,
    like_sum float8 not null default 0,
    dislike_events bigint not null default 0,
    dislike_sum float8 not null default 0,
    watchlist_events bigint not null default 0,
    watchlist_sum float8 not null default 0,
    rating_events bigint not null default 0,
    rating_sum_once float8 not null default 0,
    detail_open_events bigint not null default 0,
    detail_open_sum float8 not null default 0,
    last_outcome_at timestamptz,
    primary key (user_id, day)
);
create index idx_rec_daily_user_totals_day on rec_daily_user_totals (day);

-- Per day, experiment, variant, user and conversion name: tagged conversions (occurred_at).
create table rec_daily_conversion_rollups (
    day date not null,
    experiment_key text not null,
    variant text not null,
    user_id uuid not null,
    metric_name text not null,
    conversions bigint not null,
    value_sum float8 not null,
    primary key (experiment_key, day, variant, user_id, metric_name)
);
create index idx_rec_daily_conversion_rollups_user on rec_daily_conversion_rollups (user_id, day);

-- Per day, experiment, variant and ranking provenance (request_context.ranking): impressions.
create table rec_daily_ranking_rollups (
    id bigint generated always as identity primary key,
    day date not null,
    experiment_key text not null,
    variant text,
    profile text,
    profile_id text,
    version text,
    knobs_hash text,
    impressions bigint not null
);
create index idx_rec_daily_ranking_rollups_day on rec_daily_ranking_rollups (experiment_key, day);

do $$
declare
    rollup_table text;
begin
    foreach rollup_table in array array[
        'rec_rollup_days', 'rec_daily_user_rollups', 'rec_daily_user_totals',
        'rec_daily_conversion_rollups', 'rec_daily_ranking_rollups'
    ] loop
        execute format('alter table %I enable row level security', rollup_table);
        -- The service role reads; only the rollup functions (their owner) write.
        execute format(
            'create policy %I on %I for select to recsys_service using (true)',
            rollup_table || '_service_select', rollup_table
        );
        execute format('revoke all on %I from public, recsys_authenticated', rollup_table);
        execute format('revoke insert, update, delete, truncate on %I from recsys_service',
                       rollup_table);
        execute format('grant select on %I to recsys_service', rollup_table);
    end loop;
end
$$;

-- Today's UTC date: the first day that is not complete.
create or replace function rec_rollup_today() returns date
language sql stable parallel safe
set search_path = pg_catalog
as $$ select (now() at time zone 'UTC')::date $$;

-- The watermark: the last rolled day (NULL: nothing rolled yet).
create or replace function rec_rollup_watermark() returns date
language sql stable parallel safe
set search_path = public, pg_temp
as $$ select max(day) from rec_rollup_days $$;

-- (Re)roll one complete UTC day of every rollup table. The state row is written first: a
-- concurrent insert for that day then waits for this transaction and marks it dirty again.
create or replace function rec_rollup_day(target date) returns void
language plpgsql volatile security definer
set search_path = public, pg_temp
as $$
declare
    lo timestamptz := target::timestamp at time zone 'UTC';
    hi timestamptz := (target + 1)::timestamp at time zone 'UTC';
begin
    if target is null or target >= rec_rollup_today() then
        raise exception 'rollup: % is not a complete UTC day', target
            using errcode = '22023';
    end if;
    insert into rec_rollup_days as r (day, rolled_at, dirty) values (target, now(), false)
    on conflict (day) do update set rolled_at = excluded.rolled_at, dirty = false;
    delete from rec_daily_user_rollups where day = target;
    delete from rec_daily_user_totals where day = target;
    delete from rec_daily_conversion_rollups where day = target;
    delete from rec_daily_ranking_rollups where day = target;

    -- Each served (user, request, item, context) once, with its impressions and outcomes.
    create temp table rec_rollup_served on commit drop as
    select i.user_id, i.rec_request_id, i.request_context,
           count(*) as n, min(i.created_at) as first_at,
           coalesce(o.likes, 0) as likes, coalesce(o.like_sum, 0) as like_sum,
           coalesce(o.dislikes, 0) as dislikes, coalesce(o.dislike_sum, 0) as dislike_sum,
           coalesce(o.watchlists, 0) as watchlists, coalesce(o.watchlist_sum, 0) as watchlist_sum,
           coalesce(o.ratings, 0) as ratings, coalesce(o.rating_sum, 0) as rating_sum,
           coalesce(o.detail_opens, 0) as detail_opens,
           coalesce(o.detail_open_sum, 0) as detail_open_sum,
           o.last_outcome_at
    from rec_impressions as i
    left join lateral (
        select count(*) filter (where x.outcome_type = 'like') as likes,
               sum(x.value) filter (where x.outcome_type = 'like') as like_sum,
               count(*) filter (where x.outcome_type = 'dislike') as dislikes,
               sum(x.value) filter (where x.outcome_type = 'dislike') as dislike_sum,
               count(*) filter (where x.outcome_type = 'watchlist') as watchlists,
               sum(x.value) filter (where x.outcome_type = 'watchlist') as watchlist_sum,
               count(*) filter (where x.outcome_type = 'rating') as ratings,
               sum(x.value) filter (where x.outcome_type = 'rating') as rating_sum,
               count(*) filter (where x.outcome_type = 'detail_open') as detail_opens,
               sum(x.value) filter (where x.outcome_type = 'detail_open') as detail_open_sum,
               max(x.occurred_at) as last_outcome_at
        from rec_outcomes as x
        where x.user_id = i.user_id
          and x.rec_request_id = i.rec_request_id
          and x.media_item_id = i.media_item_id
    ) as o on true
    where i.created_at >= lo and i.created_at < hi
    group by i.user_id, i.rec_request_id, i.media_item_id, i.request_context,
             o.likes, o.like_sum, o.dislikes, o.dislike_sum, o.watchlists, o.watchlist_sum,
             o.ratings, o.rating_sum, o.detail_opens, o.detail_open_sum, o.last_outcome_at;

    insert into rec_daily_user_rollups (
        day, experiment_key, variant, user_id, impressions, requests, first_at,
        likes, dislikes, watchlists, ratings, rating_sum, detail_opens,
        like_events, like_sum, dislike_events, dislike_sum, watchlist_events, watchlist_sum,
        rating_events, rating_sum_once, detail_open_events, detail_open_sum, last_outcome_at,
        exposures)
    select target, u.experiment_key, u.variant, u.user_id,
           sum(u.impressions), sum(u.requests), min(u.first_at),
           sum(u.likes), sum(u.dislikes), sum(u.watchlists), sum(u.ratings),
           sum(u.rating_sum), sum(u.detail_opens),
           sum(u.like_events), sum(u.like_sum), sum(u.dislike_events), sum(u.dislike_sum),
           sum(u.watchlist_events), sum(u.watchlist_sum), sum(u.rating_events),
           sum(u.rating_sum_once), sum(u.detail_open_events), sum(u.detail_open_sum),
           max(u.last_outcome_at), sum(u.exposures)
    from (
        select tag.key as experiment_key, tag.value as variant, s.user_id,
               sum(s.n) as impressions, count(distinct s.rec_request_id) as requests,
               min(s.first_at) as first_at,
               sum(s.n * s.likes) as likes, sum(s.n * s.dislikes) as dislikes,
               sum(s.n * s.watchlists) as watchlists, sum(s.n * s.ratings) as ratings,
               sum(s.n * s.rating_sum) filter (where s.ratings > 0) as rating_sum,
               sum(s.n * s.detail_opens) as detail_opens,
               sum(s.likes) as like_events, sum(s.like_sum) as like_sum,
               sum(s.dislikes) as dislike_events, sum(s.dislike_sum) as dislike_sum,
               sum(s.watchlists) as watchlist_events, sum(s.watchlist_sum) as watchlist_sum,
               sum(s.ratings) as rating_events, sum(s.rating_sum) as rating_sum_once,
               sum(s.detail_opens) as detail_open_events,
               sum(s.detail_open_sum) as detail_open_sum,
               max(s.last_outcome_at) as last_outcome_at, 0 as exposures
        from rec_rollup_served as s
        cross join lateral jsonb_each_text(
            case when jsonb_typeof(s.request_context -> 'experiments') = 'object'
                 then s.request_context -> 'experiments' else '{}'::jsonb end
        ) as tag
        group by tag.key, tag.value, s.user_id
        union all
        select e.key, x.variant, x.user_id, 0, 0, null, 0, 0, 0, 0, null, 0,
               0, 0, 0, 0, 0, 0, 0, 0, 0, 0, null, count(*)
        from rec_exposures as x
        join rec_experiments as e on e.id = x.experiment_id
        where x.occurred_at >= lo and x.occurred_at < hi
        group by e.key, x.variant, x.user_id
    ) as u
    group by u.experiment_key, u.variant, u.user_id;

    insert into rec_daily_user_totals (
        day, user_id, impressions, likes, like_events, like_sum, dislike_events, dislike_sum,
        watchlist_events, watchlist_sum, rating_events, rating_sum_once, detail_open_events,
        detail_open_sum, last_outcome_at)
    select target, s.user_id, sum(s.n), sum(s.n * s.likes),
           sum(s.likes), sum(s.like_sum), sum(s.dislikes), sum(s.dislike_sum),
           sum(s.watchlists), sum(s.watchlist_sum), sum(s.ratings), sum(s.rating_sum),
           sum(s.detail_opens), sum(s.detail_open_sum), max(s.last_outcome_at)
    from rec_rollup_served as s
    group by s.user_id;

    insert into rec_daily_ranking_rollups (
        day, experiment_key, variant, profile, profile_id, version, knobs_hash, impressions)
    select target, tag.key, tag.value,
           s.request_context -> 'ranking' ->> 'profile',
           s.request_context -> 'ranking' ->> 'profile_id',
           s.request_context -> 'ranking' ->> 'version',
           s.request_context -> 'ranking' ->> 'knobs_hash',
           sum(s.n)
    from rec_rollup_served as s
    cross join lateral jsonb_each_text(
        case when jsonb_typeof(s.request_context -> 'experiments') = 'object'
             then s.request_context -> 'experiments' else '{}'::jsonb end
    ) as tag
    group by 1, 2, 3, 4, 5, 6, 7;

    insert into rec_daily_conversion_rollups (
        day, experiment_key, variant, user_id, metric_name, conversions, value_sum)
    select target, tag.key, tag.value, c.user_id, c.metric_name, count(*), sum(c.value)
    from rec_conversions as c
    cross join lateral jsonb_each_text(
        case when jsonb_typeof(c.request_context -> 'experiments') = 'object'
             then c.request_context -> 'experiments' else '{}'::jsonb end
    ) as tag
    where c.occurred_at >= lo and c.occurred_at < hi
    group by tag.key, tag.value, c.user_id, c.metric_name;

    drop table rec_rollup_served;
end
$$;

-- The first day with any event (NULL: none).
create or replace function rec_rollup_first_day() returns date
language sql stable security definer
set search_path = public, pg_temp
as $$
    select least(
        (select (min(created_at) at time zone 'UTC')::date from rec_impressions),
        (select (min(occurred_at) at time zone 'UTC')::date from rec_conversions),
        (select (min(occurred_at) at time zone 'UTC')::date from rec_exposures)
    )
$$;

-- Roll every missing day after the watermark through `through` (at most yesterday), and
-- every dirty day up to it; returns the days rolled. Idempotent: nothing to do, nothing done.
create or replace function rec_rollup_through(through date) returns setof date
language plpgsql volatile security definer
set search_path = public, pg_temp
as $$
declare
    last_day date := least(through, rec_rollup_today() - 1);
    next_day date;
    dirty_day date;
begin
    if last_day is null then
        return;
    end if;
    -- One rollup at a time (cron and an on-demand read may meet).
    perform pg_advisory_xact_lock(hashtext('rec_rollup'));
    for dirty_day in
        select r.day from rec_rollup_days as r where r.dirty and r.day <= last_day order by 1
    loop
        perform rec_rollup_day(dirty_day);
        return next dirty_day;
    end loop;
    next_day := coalesce(rec_rollup_watermark() + 1, rec_rollup_first_day());
    while next_day is not null and next_day <= last_day loop
        perform rec_rollup_day(next_day);
        return next next_day;
        next_day := next_day + 1;
    end loop;
end
$$;

-- Mark these days dirty when a rollup covers them (up to the watermark; a day before the
-- first rolled one gets a dirty row too, so it is read raw).
create or replace function rec_rollup_mark_dirty(days date[]) returns void
language sql volatile security definer
set search_path = public, pg_temp
as $$
    insert into rec_rollup_days as r (day, rolled_at, dirty)
    select distinct d, null::timestamptz, true
    from unnest(days) as d
    where d is not null and d <= rec_rollup_watermark()
    on conflict (day) do update set dirty = true where not r.dirty
$$;

-- A deleted user's rollup rows (their events went by on delete cascade). No foreign key on
-- the rollups: `manage.py flush` truncates accounts_user, which a foreign key would forbid.
create or replace function rec_rollup_forget_deleted_users(user_ids uuid[]) returns void
language sql volatile security definer
set search_path = public, pg_temp
as $$
    with gone as (
        select g.id from unnest(user_ids) as g(id)
        where not exists (select 1 from accounts_user as u where u.id = g.id)
    ),
    a as (delete from rec_daily_user_rollups where user_id in (select id from gone)),
    b as (delete from rec_daily_user_totals where user_id in (select id from gone))
    delete from rec_daily_conversion_rollups where user_id in (select id from gone)
$$;

-- Statement triggers on the four event tables (transition tables: one statement, one pass).
create or replace function rec_rollup_impressions_changed() returns trigger
language plpgsql security definer
set search_path = public, pg_temp
as $$
begin
    if rec_rollup_watermark() is null then
        return null;
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
        perform rec_rollup_mark_dirty(array(
            select distinct (n.created_at at time zone 'UTC')::date from rec_rollup_new as n));
    end if;
    if tg_op in ('DELETE', 'UPDATE') then
        -- A deleted user's rows go with them (no day to reopen); a single deleted impression
        -- reopens its day.
        perform rec_rollup_forget_deleted_users(array(
            select distinct o.user_id from rec_rollup_old as o));
        perform rec_rollup_mark_dirty(array(
            select distinct (o.created_at at time zone 'UTC')::date from rec_rollup_old as o
            where exists (select 1 from accounts_user as u where u.id = o.user_id)));
    end if;
    return null;
end
$$;

create or replace function rec_rollup_outcomes_changed() returns trigger
language plpgsql security definer
set search_path = public, pg_temp
as $$
declare
    watermark date := rec_rollup_watermark();
begin
    if watermark is null then
        return null;
    end if;
    -- An outcome belongs to its impression's day: only impressions up to the watermark matter.
    if tg_op in ('INSERT', 'UPDATE') then
        perform rec_rollup_mark_dirty(array(
            select distinct (i.created_at at time zone 'UTC')::date
            from rec_rollup_new as n
            join rec_impressions as i
              on i.rec_request_id = n.rec_request_id and i.media_item_id = n.media_item_id
             and i.user_id = n.user_id
            where i.created_at < (watermark + 1)::timestamp at time zone 'UTC'));
    end if;
    if tg_op in ('DELETE', 'UPDATE') then
        perform rec_rollup_mark_dirty(array(
            select distinct (i.created_at at time zone 'UTC')::date
            from rec_rollup_old as o
            join rec_impressions as i
              on i.rec_request_id = o.rec_request_id and i.media_item_id = o.media_item_id
             and i.user_id = o.user_id
            where i.created_at < (watermark + 1)::timestamp at time zone 'UTC'));
    end if;
    return null;
end
$$;

-- Conversions and exposures: the day they occurred.
create or replace function rec_rollup_occurred_changed() returns trigger
language plpgsql security definer
set search_path = public, pg_temp
as $$
begin
    if rec_rollup_watermark() is null then
        return null;
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
        perform rec_rollup_mark_dirty(array(
            select distinct (n.occurred_at at time zone 'UTC')::date from rec_rollup_new as n));
    end if;
    if tg_op in ('DELETE', 'UPDATE') then
        perform rec_rollup_forget_deleted_users(array(
            select distinct o.user_id from rec_rollup_old as o));
        perform rec_rollup_mark_dirty(array(
            select distinct (o.occurred_at at time zone 'UTC')::date from rec_rollup_old as o
            where exists (select 1 from accounts_user as u where u.id = o.user_id)));
    end if;
    return null;
end
$$;

do $$
declare
    event_table text;
    handler text;
begin
    foreach event_table in array array[
        'rec_impressions', 'rec_outcomes', 'rec_conversions', 'rec_exposures'
    ] loop
        handler := case event_table
            when 'rec_impressions' then 'rec_rollup_impressions_changed'
            when 'rec_outcomes' then 'rec_rollup_outcomes_changed'
            else 'rec_rollup_occurred_changed' end;
        execute format(
            'create trigger %I after insert on %I referencing new table as rec_rollup_new '
            'for each statement execute function %I()',
            event_table || '_rollup_insert', event_table, handler);
        execute format(
            'create trigger %I after update on %I '
            'referencing old table as rec_rollup_old new table as rec_rollup_new '
            'for each statement execute function %I()',
            event_table || '_rollup_update', event_table, handler);
        execute format(
            'create trigger %I after delete on %I referencing old table as rec_rollup_old '
            'for each statement execute function %I()',
            event_table || '_rollup_delete', event_table, handler);
    end loop;
end
$$;

-- Only the service role (the command and the results) may roll; the triggers run as owner.
revoke execute on function rec_rollup_day(date), rec_rollup_through(date),
    rec_rollup_mark_dirty(date[]), rec_rollup_first_day(),
    rec_rollup_forget_deleted_users(uuid[]) from public;
grant execute on function rec_rollup_day(date), rec_rollup_through(date) to recsys_service;
