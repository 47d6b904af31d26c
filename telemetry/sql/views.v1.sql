-- Daily telemetry views, computed from the raw rows: no backfill, no refresh, no cron.
-- All run with the caller's rights (security_invoker). Days are UTC dates; an outcome counts
-- on its impression's day. `day` is the same expression as the idx_*_day indexes, and every
-- grouping keeps `day` a plain grouping column, so `where day >= …` is pushed down to the
-- tables instead of scanning the whole history.

-- One row per impression with what the user did with that item from that deck.
create view rec_impression_outcomes_v1 with (security_invoker = true) as
select (i.created_at at time zone 'UTC')::date as day,
       i.id as impression_id,
       i.user_id,
       i.rec_request_id,
       i.media_item_id,
       i.position,
       i.source,
       i.request_context,
       o.likes, o.dislikes, o.watchlists, o.ratings, o.rating_sum, o.detail_opens
from rec_impressions as i
cross join lateral (
    select count(*) filter (where x.outcome_type = 'like') as likes,
           count(*) filter (where x.outcome_type = 'dislike') as dislikes,
           count(*) filter (where x.outcome_type = 'watchlist') as watchlists,
           count(*) filter (where x.outcome_type = 'rating') as ratings,
           sum(x.value) filter (where x.outcome_type = 'rating') as rating_sum,
           count(*) filter (where x.outcome_type = 'detail_open') as detail_opens
    from rec_outcomes as x
    where x.user_id = i.user_id
      and x.rec_request_id = i.rec_request_id
      and x.media_item_id = i.media_item_id
) as o;

-- Per day, experiment and variant, from the flat request_context.experiments map.
create view rec_variant_daily_metrics_v1 with (security_invoker = true) as
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
group by io.day, tag.key, tag.value;

create view rec_source_daily_metrics_v1 with (security_invoker = true) as
select io.day,
       io.source,
       count(*) as impressions,
       count(distinct io.user_id) as users,
       sum(io.likes)::bigint as likes,
       sum(io.dislikes)::bigint as dislikes,
       sum(io.watchlists)::bigint as watchlists,
       sum(io.ratings)::bigint as ratings,
       sum(io.detail_opens)::bigint as detail_opens,
       sum(io.likes)::float8 / count(*) as like_rate,
       sum(io.dislikes)::float8 / count(*) as dislike_rate
from rec_impression_outcomes_v1 as io
group by io.day, io.source;

create view rec_position_daily_metrics_v1 with (security_invoker = true) as
select io.day,
       io.position,
       count(*) as impressions,
       count(distinct io.user_id) as users,
       sum(io.likes)::bigint as likes,
       sum(io.dislikes)::bigint as dislikes,
       sum(io.watchlists)::bigint as watchlists,
       sum(io.ratings)::bigint as ratings,
       sum(io.detail_opens)::bigint as detail_opens,
       sum(io.likes)::float8 / count(*) as like_rate,
       sum(io.detail_opens)::float8 / count(*) as detail_open_rate
from rec_impression_outcomes_v1 as io
group by io.day, io.position;

-- An item with several genres counts once in each.
create view rec_genre_daily_metrics_v1 with (security_invoker = true) as
select io.day,
       genre.name as genre,
       count(*) as impressions,
       count(distinct io.user_id) as users,
       sum(io.likes)::bigint as likes,
       sum(io.dislikes)::bigint as dislikes,
       sum(io.watchlists)::bigint as watchlists,
       sum(io.ratings)::bigint as ratings,
       sum(io.detail_opens)::bigint as detail_opens,
       sum(io.likes)::float8 / count(*) as like_rate
from rec_impression_outcomes_v1 as io
join media_items as m on m.id = io.media_item_id
cross join lateral unnest(m.genres) as genre(name)
group by io.day, genre.name;

-- Is the telemetry path healthy? Impressions missing experiment tags (null or {}) and
-- outcomes (on their own arrival day) with no matching impression.
create view rec_health_daily_metrics_v1 with (security_invoker = true) as
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

-- One row per day and alert over the last 60 days (since the first impression): value,
-- threshold (rec_alert_thresholds) and whether it fires. The like-rate drop compares a day
-- with the mean of the 7 days before it.
create view rec_alerts_daily_metrics_v1 with (security_invoker = true) as
with first_day as (
    select (min(i.created_at) at time zone 'UTC')::date as day from rec_impressions as i
),
calendar as (
    select d::date as day
    from first_day,
         generate_series(greatest(first_day.day, current_date - 67), current_date, interval '1 day') as d
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
           on h.day = c.day and h.day >= current_date - 67
    left join (
        select io.day, sum(io.likes)::float8 / count(*) as like_rate
        from rec_impression_outcomes_v1 as io
        where io.day >= current_date - 67
        group by io.day
    ) as lr on lr.day = c.day
),
with_trailing as (
    select d.*,
           avg(d.like_rate) over (order by d.day rows between 7 preceding and 1 preceding)
               as trailing_like_rate
    from daily as d
)
select t.day,
       a.alert,
       a.value,
       th.threshold,
       coalesce(case th.fires_when
           when 'above' then a.value > th.threshold
           else a.value <= th.threshold
       end, false) as fires
from with_trailing as t
cross join lateral (values
    ('untagged_impressions', t.untagged_share),
    ('orphan_outcomes', t.orphan_share),
    ('no_impressions', t.impressions::float8),
    ('like_rate_drop',
     (t.trailing_like_rate - t.like_rate) / nullif(t.trailing_like_rate, 0))
) as a(alert, value)
join rec_alert_thresholds as th on th.alert = a.alert
where t.day >= current_date - 60;

-- Alerts firing in the last day (today or yesterday, UTC).
create view rec_active_alerts_v1 with (security_invoker = true) as
select a.day, a.alert, a.value, a.threshold
from rec_alerts_daily_metrics_v1 as a
where a.fires and a.day >= current_date - 1;

-- Which of these deck requests were served to someone other than `owner`? Lets the outcome
-- path reject another user's rec_request_id although RLS hides other users' impressions.
create or replace function rec_requests_of_other_users(owner uuid, request_ids uuid[])
returns setof uuid
language sql stable security definer
set search_path = public, pg_temp
as $$
    select distinct i.rec_request_id
    from rec_impressions as i
    where i.rec_request_id = any(request_ids) and i.user_id <> owner
$$;
