-- The source, position and genre daily views split by experiment and variant (issue 16 §5),
-- for the results page tabs and the metrics API (`?view=`). Same columns and definitions as
-- rec_source/position/genre_daily_metrics_v1, plus experiment_key and variant taken from the
-- flat request_context.experiments map as in rec_variant_daily_metrics_v1: an impression
-- tagged with two experiments counts once in each. `day`, `experiment_key` and `variant` are
-- plain grouping columns, so `where day between … and experiment_key = …` is pushed down to
-- rec_impressions (idx_*_day) instead of scanning the whole history.

create view rec_variant_source_daily_metrics_v1 with (security_invoker = true) as
select io.day,
       tag.key as experiment_key,
       tag.value as variant,
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
cross join lateral jsonb_each_text(
    case when jsonb_typeof(io.request_context -> 'experiments') = 'object'
         then io.request_context -> 'experiments' else '{}'::jsonb end
) as tag
group by io.day, tag.key, tag.value, io.source;

create view rec_variant_position_daily_metrics_v1 with (security_invoker = true) as
select io.day,
       tag.key as experiment_key,
       tag.value as variant,
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
cross join lateral jsonb_each_text(
    case when jsonb_typeof(io.request_context -> 'experiments') = 'object'
         then io.request_context -> 'experiments' else '{}'::jsonb end
) as tag
group by io.day, tag.key, tag.value, io.position;

-- An item with several genres counts once in each.
create view rec_variant_genre_daily_metrics_v1 with (security_invoker = true) as
select io.day,
       tag.key as experiment_key,
       tag.value as variant,
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
cross join lateral jsonb_each_text(
    case when jsonb_typeof(io.request_context -> 'experiments') = 'object'
         then io.request_context -> 'experiments' else '{}'::jsonb end
) as tag
join media_items as m on m.id = io.media_item_id
cross join lateral unnest(m.genres) as genre(name)
group by io.day, tag.key, tag.value, genre.name;
