-- rec_variant_daily_metrics_v1 with its raw side in two disjoint branches (res18): the days
-- after the watermark and the dirty days. views.v2.sql's one `day > coalesce(
-- rec_rollup_watermark(), …) or day = any(…)` was a filter calling the (not inlinable)
-- watermark function once per row of the days asked: its cost grew with the rows of the
-- window and the number of rolled days behind it. Here the watermark is an InitPlan computed
-- once, and each branch's condition and the caller's `where day …` are both index conditions
-- on the day index. Same name, columns and numbers as views.v2.sql.

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
from (
    select a.* from rec_impression_outcomes_v1 as a
    where a.day > (select coalesce(rec_rollup_watermark(), '-infinity'::date))
    union all
    select d.* from rec_impression_outcomes_v1 as d
    where d.day = any (array(select r.day from rec_rollup_days as r where r.dirty))
) as io
cross join lateral jsonb_each_text(
    case when jsonb_typeof(io.request_context -> 'experiments') = 'object'
         then io.request_context -> 'experiments' else '{}'::jsonb end
) as tag
group by io.day, tag.key, tag.value;
