-- Back to views.v1.sql's definitions of the two views views.v2.sql replaces.

create or replace view rec_variant_daily_metrics_v1 with (security_invoker = true) as
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

create or replace view rec_active_alerts_v1 with (security_invoker = true) as
select a.day, a.alert, a.value, a.threshold
from rec_alerts_daily_metrics_v1 as a
where a.fires and a.day >= current_date - 1;
