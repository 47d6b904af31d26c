-- Back to the raw health view (views.v1.sql) and views.v2.sql's alerts; the health rollup,
-- its function and triggers go.

do $$
declare
    event_table text;
begin
    foreach event_table in array array['rec_impressions', 'rec_outcomes'] loop
        execute format('drop trigger if exists %I on %I', event_table || '_health_insert', event_table);
        execute format('drop trigger if exists %I on %I', event_table || '_health_update', event_table);
        execute format('drop trigger if exists %I on %I', event_table || '_health_delete', event_table);
    end loop;
end
$$;
drop trigger if exists rec_rollup_days_health on rec_rollup_days;

create or replace view rec_health_daily_metrics_v1 with (security_invoker = true) as
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
    select (i.created_at at time zone 'UTC')::date as day,
           1 as impressions,
           case when i.request_context -> 'experiments' is null
                  or i.request_context -> 'experiments' = '{}'::jsonb then 1 else 0 end as untagged,
           0 as outcomes,
           0 as orphans
    from rec_impressions as i
    union all
    select (o.created_at at time zone 'UTC')::date,
           0,
           0,
           1,
           case when exists (
               select 1 from rec_impressions as i
               where i.user_id = o.user_id
                 and i.rec_request_id = o.rec_request_id
                 and i.media_item_id = o.media_item_id
           ) then 0 else 1 end
    from rec_outcomes as o
) as u
group by u.day;

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
        select io.day, sum(io.likes)::float8 / count(*) as like_rate
        from rec_impression_outcomes_v1 as io
        where io.day >= current_date - 8
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

drop function if exists rec_rollup_impressions_health_changed();
drop function if exists rec_rollup_outcomes_health_changed();
drop function if exists rec_rollup_days_health();
drop function if exists rec_rollup_health_day(date);
drop table if exists rec_daily_health_rollups;
