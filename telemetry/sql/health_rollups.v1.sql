-- A per-day rollup of what the health view and the alerts judge (issue 17 §1; res17), beside
-- the per-user rollups of rollups.v1.sql and kept by the same days: a clean rolled day
-- (rec_rollup_days, not dirty) has its row here, every other day is read raw, exactly as
-- before. Per UTC day:
--   impressions, untagged         impressions by their created_at day (tags null or {})
--   impression_likes              likes joined to that day's impressions, per impression (the
--                                 alerts' like rate: sum(likes) / impressions, as
--                                 rec_impression_outcomes_v1 counts them)
--   outcomes, orphans             outcomes by their own created_at day, and those with no
--                                 matching impression
-- An outcome's own day can differ from its impression's day, and a late impression can adopt
-- an orphan: the triggers below reopen (mark dirty) the outcome's own day on any change of an
-- outcome, and the days of the outcomes an inserted, updated or deleted impression matches.

create table rec_daily_health_rollups (
    day date primary key,
    impressions bigint not null,
    untagged bigint not null,
    impression_likes bigint not null,
    outcomes bigint not null,
    orphans bigint not null
);

alter table rec_daily_health_rollups enable row level security;
create policy rec_daily_health_rollups_service_select on rec_daily_health_rollups
    for select to recsys_service using (true);
revoke all on rec_daily_health_rollups from public, recsys_authenticated;
revoke insert, update, delete, truncate on rec_daily_health_rollups from recsys_service;
grant select on rec_daily_health_rollups to recsys_service;

-- (Re)compute one day's health row from the raw rows (the day indexes: idx_rec_impressions_day,
-- idx_rec_outcomes_day). No row for a day without impressions or outcomes (as the raw view).
create or replace function rec_rollup_health_day(target date) returns void
language plpgsql volatile security definer
set search_path = public, pg_temp
as $$
begin
    delete from rec_daily_health_rollups where day = target;
    insert into rec_daily_health_rollups (
        day, impressions, untagged, impression_likes, outcomes, orphans)
    select target, i.impressions, i.untagged, i.likes, o.outcomes, o.orphans
    from (
        select count(*) as impressions,
               count(*) filter (
                   where i.request_context -> 'experiments' is null
                      or i.request_context -> 'experiments' = '{}'::jsonb) as untagged,
               coalesce(sum((
                   select count(*) from rec_outcomes as x
                   where x.user_id = i.user_id and x.rec_request_id = i.rec_request_id
                     and x.media_item_id = i.media_item_id and x.outcome_type = 'like'
               )), 0) as likes
        from rec_impressions as i
        where (i.created_at at time zone 'UTC')::date = target
    ) as i,
    (
        select count(*) as outcomes,
               count(*) filter (where (
                   select true from rec_impressions as i
                   where i.user_id = o.user_id and i.rec_request_id = o.rec_request_id
                     and i.media_item_id = o.media_item_id
                   limit 1) is null) as orphans
        from rec_outcomes as o
        where (o.created_at at time zone 'UTC')::date = target
    ) as o
    where i.impressions > 0 or o.outcomes > 0;
end
$$;

-- A day rolled clean (rec_rollup_day writes its state row first) gets its health row too.
create or replace function rec_rollup_days_health() returns trigger
language plpgsql security definer
set search_path = public, pg_temp
as $$
begin
    perform rec_rollup_health_day(new.day);
    return null;
end
$$;

create trigger rec_rollup_days_health after insert or update on rec_rollup_days
for each row when (not new.dirty) execute function rec_rollup_days_health();

-- Outcomes: their own created_at day (counts, orphans).
create or replace function rec_rollup_outcomes_health_changed() returns trigger
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
        perform rec_rollup_mark_dirty(array(
            select distinct (o.created_at at time zone 'UTC')::date from rec_rollup_old as o));
    end if;
    return null;
end
$$;

-- Impressions: the days of the outcomes they match (an orphan adopted or made), and, for a
-- deleted impression, its own day (rollups.v1.sql leaves a deleted user's days alone: their
-- per-user rows go; the health counts are per day).
create or replace function rec_rollup_impressions_health_changed() returns trigger
language plpgsql security definer
set search_path = public, pg_temp
as $$
declare
    watermark date := rec_rollup_watermark();
begin
    if watermark is null then
        return null;
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
        perform rec_rollup_mark_dirty(array(
            select distinct (x.created_at at time zone 'UTC')::date
            from rec_rollup_new as n
            join rec_outcomes as x
              on x.rec_request_id = n.rec_request_id and x.media_item_id = n.media_item_id
             and x.user_id = n.user_id
            where x.created_at < (watermark + 1)::timestamp at time zone 'UTC'));
    end if;
    if tg_op in ('DELETE', 'UPDATE') then
        perform rec_rollup_mark_dirty(array(
            select distinct (o.created_at at time zone 'UTC')::date from rec_rollup_old as o
            union
            select distinct (x.created_at at time zone 'UTC')::date
            from rec_rollup_old as o
            join rec_outcomes as x
              on x.rec_request_id = o.rec_request_id and x.media_item_id = o.media_item_id
             and x.user_id = o.user_id
            where x.created_at < (watermark + 1)::timestamp at time zone 'UTC'));
    end if;
    return null;
end
$$;

do $$
declare
    event_table text;
    handler text;
begin
    foreach event_table in array array['rec_impressions', 'rec_outcomes'] loop
        handler := case event_table
            when 'rec_impressions' then 'rec_rollup_impressions_health_changed'
            else 'rec_rollup_outcomes_health_changed' end;
        execute format(
            'create trigger %I after insert on %I referencing new table as rec_rollup_new '
            'for each statement execute function %I()',
            event_table || '_health_insert', event_table, handler);
        execute format(
            'create trigger %I after update on %I '
            'referencing old table as rec_rollup_old new table as rec_rollup_new '
            'for each statement execute function %I()',
            event_table || '_health_update', event_table, handler);
        execute format(
            'create trigger %I after delete on %I referencing old table as rec_rollup_old '
            'for each statement execute function %I()',
            event_table || '_health_delete', event_table, handler);
    end loop;
end
$$;

revoke execute on function rec_rollup_health_day(date) from public;

-- The days rolled before this file: their health rows now.
select rec_rollup_health_day(r.day) from rec_rollup_days as r where not r.dirty;

-- Read the clean rolled days from the rollup, every other day raw: after the watermark, a
-- dirty day, or a day before the first rolled one (an outcome may predate every impression).
-- Nothing rolled yet: every day is after the (minus infinite) watermark, none before the first.
-- An outcome's impression is probed by its index (a scalar subquery: an EXISTS may be planned
-- as a hash of every impression ever served). Each raw side is three disjoint branches, one
-- condition each, so that the condition and the caller's `where day ...` are both index
-- conditions on the day indexes (one OR of the three would be a filter over every row of the
-- days asked).
create or replace view rec_health_daily_metrics_v1 with (security_invoker = true) as
with rolled as (
    select coalesce(rec_rollup_watermark(), '-infinity'::date) as watermark,
           coalesce((select min(r.day) from rec_rollup_days as r), '-infinity'::date) as first
)
select u.day,
       sum(u.impressions)::bigint as impressions,
       sum(u.untagged)::bigint as impressions_missing_experiments,
       coalesce(sum(u.untagged)::float8 / nullif(sum(u.impressions), 0), 0)
           as impressions_missing_experiments_share,
       sum(u.outcomes)::bigint as outcomes,
       sum(u.orphans)::bigint as outcomes_without_impression,
       coalesce(sum(u.orphans)::float8 / nullif(sum(u.outcomes), 0), 0)
           as outcomes_without_impression_share
from (
    select h.day, h.impressions, h.untagged, h.outcomes, h.orphans
    from rec_daily_health_rollups as h
    join rec_rollup_days as r on r.day = h.day and not r.dirty
    union all
    select (i.created_at at time zone 'UTC')::date as day,
           1 as impressions,
           case when i.request_context -> 'experiments' is null
                  or i.request_context -> 'experiments' = '{}'::jsonb then 1 else 0 end as untagged,
           0 as outcomes,
           0 as orphans
    from rec_impressions as i
    where (i.created_at at time zone 'UTC')::date > (select watermark from rolled)
    union all
    select (i.created_at at time zone 'UTC')::date as day,
           1 as impressions,
           case when i.request_context -> 'experiments' is null
                  or i.request_context -> 'experiments' = '{}'::jsonb then 1 else 0 end as untagged,
           0 as outcomes,
           0 as orphans
    from rec_impressions as i
    where (i.created_at at time zone 'UTC')::date = any (array(select r.day from rec_rollup_days as r where r.dirty))
    union all
    select (i.created_at at time zone 'UTC')::date as day,
           1 as impressions,
           case when i.request_context -> 'experiments' is null
                  or i.request_context -> 'experiments' = '{}'::jsonb then 1 else 0 end as untagged,
           0 as outcomes,
           0 as orphans
    from rec_impressions as i
    where (i.created_at at time zone 'UTC')::date < (select first from rolled)
    union all
    select (o.created_at at time zone 'UTC')::date,
           0,
           0,
           1,
           case when (
               select true from rec_impressions as i
               where i.user_id = o.user_id
                 and i.rec_request_id = o.rec_request_id
                 and i.media_item_id = o.media_item_id
               limit 1
           ) then 0 else 1 end
    from rec_outcomes as o
    where (o.created_at at time zone 'UTC')::date > (select watermark from rolled)
    union all
    select (o.created_at at time zone 'UTC')::date,
           0,
           0,
           1,
           case when (
               select true from rec_impressions as i
               where i.user_id = o.user_id
                 and i.rec_request_id = o.rec_request_id
                 and i.media_item_id = o.media_item_id
               limit 1
           ) then 0 else 1 end
    from rec_outcomes as o
    where (o.created_at at time zone 'UTC')::date = any (array(select r.day from rec_rollup_days as r where r.dirty))
    union all
    select (o.created_at at time zone 'UTC')::date,
           0,
           0,
           1,
           case when (
               select true from rec_impressions as i
               where i.user_id = o.user_id
                 and i.rec_request_id = o.rec_request_id
                 and i.media_item_id = o.media_item_id
               limit 1
           ) then 0 else 1 end
    from rec_outcomes as o
    where (o.created_at at time zone 'UTC')::date < (select first from rolled)
) as u
group by u.day;

-- views.v2.sql's alerts, with the like rate of the clean rolled days from the health rollup.
create or replace view rec_active_alerts_v1 with (security_invoker = true) as
with first_day as (
    select (min(i.created_at) at time zone 'UTC')::date as day from rec_impressions as i
),
calendar as (
    select d::date as day
    from first_day,
         generate_series(greatest(first_day.day, current_date - 8), current_date, interval '1 day') as d
    where first_day.day is not null
),
rolled as (
    select coalesce(rec_rollup_watermark(), '-infinity'::date) as watermark,
           coalesce((select min(r.day) from rec_rollup_days as r), '-infinity'::date) as first
),
daily as (
    select c.day,
           coalesce(h.impressions, 0) as impressions,
           coalesce(h.impressions_missing_experiments_share, 0) as untagged_share,
           coalesce(h.outcomes_without_impression_share, 0) as orphan_share,
           lr.like_rate
    from calendar as c
    left join rec_health_daily_metrics_v1 as h
           on h.day = c.day and h.day >= current_date - 8
    left join (
        select h.day, h.impression_likes::float8 / h.impressions as like_rate
        from rec_daily_health_rollups as h
        join rec_rollup_days as r on r.day = h.day and not r.dirty
        where h.day >= current_date - 8 and h.impressions > 0
        union all
        select io.day, sum(io.likes)::float8 / count(*) as like_rate
        from (
            select io.day, io.likes from rec_impression_outcomes_v1 as io
            where io.day >= current_date - 8 and io.day > (select watermark from rolled)
            union all
            select io.day, io.likes from rec_impression_outcomes_v1 as io
            where io.day >= current_date - 8
              and io.day = any (array(select r.day from rec_rollup_days as r where r.dirty))
            union all
            select io.day, io.likes from rec_impression_outcomes_v1 as io
            where io.day >= current_date - 8 and io.day < (select first from rolled)
        ) as io
        group by io.day
    ) as lr on lr.day = c.day
),
with_trailing as (
    select d.*,
           avg(d.like_rate) over (order by d.day rows between 7 preceding and 1 preceding)
               as trailing_like_rate
    from daily as d
)
select t.day, a.alert, a.value, th.threshold
from with_trailing as t
cross join lateral (values
    ('untagged_impressions', t.untagged_share),
    ('orphan_outcomes', t.orphan_share),
    ('no_impressions', t.impressions::float8),
    ('like_rate_drop',
     (t.trailing_like_rate - t.like_rate) / nullif(t.trailing_like_rate, 0))
) as a(alert, value)
join rec_alert_thresholds as th on th.alert = a.alert
where t.day >= current_date - 1
  and coalesce(case th.fires_when
          when 'above' then a.value > th.threshold
          else a.value <= th.threshold
      end, false);
