-- Daily views backed by the rollups (issue 17 §1; telemetry/sql/rollups.v1.sql). Same names,
-- columns and numbers as views.v1.sql: a rolled, clean day is read from the rollups, every
-- other day (after the watermark: today, yesterday before its rollup; or a dirty day, reopened
-- by a late event) from the raw rows exactly as before. A day comes from one side only, so
-- the distinct counts (users, requests) stay exact. `day` stays a plain column on both sides:
-- `where day between …` reaches both the rollup's key and the raw day indexes.

create or replace view rec_variant_daily_metrics_v1 with (security_invoker = true) as
select u.day,
       u.experiment_key,
       u.variant,
       sum(u.impressions)::bigint as impressions,
       count(*) as users,
       sum(u.requests)::bigint as requests,
       sum(u.likes)::bigint as likes,
       sum(u.dislikes)::bigint as dislikes,
       sum(u.watchlists)::bigint as watchlists,
       sum(u.ratings)::bigint as ratings,
       sum(u.detail_opens)::bigint as detail_opens,
       sum(u.rating_sum) / nullif(sum(u.ratings), 0) as avg_rating,
       sum(u.likes)::float8 / sum(u.impressions) as like_rate
from rec_daily_user_rollups as u
join rec_rollup_days as r on r.day = u.day and not r.dirty
where u.impressions > 0
group by u.day, u.experiment_key, u.variant
union all
select io.day,
       tag.key as experiment_key,
       tag.value as variant,
       count(*) as impressions,
       count(distinct io.user_id) as users,
       count(distinct io.rec_request_id) as requests,
       sum(io.likes)::bigint as likes,
       sum(io.dislikes)::bigint as dislikes,
       sum(io.watchlists)::bigint as watchlists,
       sum(io.ratings)::bigint as ratings,
       sum(io.detail_opens)::bigint as detail_opens,
       sum(io.rating_sum) / nullif(sum(io.ratings), 0) as avg_rating,
       sum(io.likes)::float8 / count(*) as like_rate
from rec_impression_outcomes_v1 as io
cross join lateral jsonb_each_text(
    case when jsonb_typeof(io.request_context -> 'experiments') = 'object'
         then io.request_context -> 'experiments' else '{}'::jsonb end
) as tag
where io.day > coalesce(rec_rollup_watermark(), '-infinity'::date)
   or io.day = any (array(select r.day from rec_rollup_days as r where r.dirty))
group by io.day, tag.key, tag.value;

-- Alerts firing in the last day (today or yesterday, UTC). Same rows as before, but only the
-- days it judges are computed: today and yesterday, and the 7 days before them for the
-- like-rate trailing mean (v1 computed 68 days, twice, and kept 2).
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
