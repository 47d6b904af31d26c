-- Restores v3 of rec_deck_setup and media_swipe_deck_v1 (deck.v3.sql) and drops the deck's
-- order-matching indexes and the per-genre popularity table with its triggers.

drop trigger if exists media_item_genres_sync_row on media_items;
drop trigger if exists media_item_genres_sync_truncate on media_items;
drop function if exists media_item_genres_sync();
drop table if exists media_item_genres;
drop index if exists idx_media_items_year_newest;
drop index if exists idx_media_items_popularity_id;

-- rec_deck_experiments (deck.v1.sql) over the user's profile knobs: the {experiment_key:
-- variant} map, the final knobs (profile knobs, then each assigned variant's config in
-- experiment-key order, a later key winning) and the provenance with the final knobs' hash.
create or replace function rec_deck_setup(
    user_id uuid, platform text, app_version text,
    out experiments jsonb, out knobs jsonb, out ranking jsonb
)
language plpgsql volatile
set search_path = public, pg_temp
as $$
declare
    experiment record;
    chosen text;
begin
    select r.knobs, r.ranking into knobs, ranking
    from rec_ranking_profile_knobs(rec_deck_setup.user_id) as r;
    experiments := '{}'::jsonb;
    for experiment in select e.key, e.variants from rec_active_experiments() as e order by e.key loop
        chosen := rec_assign_variant(
            experiment.key, rec_deck_setup.user_id,
            rec_deck_setup.platform, rec_deck_setup.app_version
        );
        continue when chosen is null;
        experiments := experiments || jsonb_build_object(experiment.key, chosen);
        knobs := knobs || coalesce(
            (select v.item -> 'config'
             from jsonb_array_elements(experiment.variants) as v(item)
             where v.item ->> 'name' = chosen
             limit 1),
            '{}'::jsonb
        );
    end loop;
    ranking := ranking || jsonb_build_object('knobs_hash', rec_knobs_hash(knobs));
end
$$;

-- Builds and records one deck for `user_id` and returns
-- {rec_request_id, experiments, ranking, items: [{media_item_id, title, genres, year, position,
--  source, score}]}. Sources: cf (cf_recos), genre (recsys_user_prefs), popularity,
-- freshness; each item's source is the one contributing most to its blended score. Items the
-- user liked, disliked, watchlisted or rated are never served. At most `diversity_cap` items
-- per primary genre come first; the rest only fill a deck the cap would leave short.
-- The deck is empty only when the user has acted on every title.
create or replace function media_swipe_deck_v1(
    user_id uuid, deck_limit integer, platform text, app_version text
) returns jsonb
language plpgsql volatile
set search_path = public, pg_temp
as $$
declare
    request_id uuid := gen_random_uuid();
    setup record;
    cf_weight float8;
    genre_weight float8;
    popularity_weight float8;
    freshness_weight float8;
    half_life float8;
    diversity_cap integer;
    pool integer;
    items jsonb;
begin
    if deck_limit is null or deck_limit < 1 or deck_limit > 50 then
        raise exception 'deck_limit must be between 1 and 50, not %', deck_limit
            using errcode = 'invalid_parameter_value';
    end if;
    select * into setup from rec_deck_setup(
        media_swipe_deck_v1.user_id, media_swipe_deck_v1.platform, media_swipe_deck_v1.app_version
    );
    cf_weight := (setup.knobs ->> 'cf_weight')::float8;
    genre_weight := (setup.knobs ->> 'genre_weight')::float8;
    popularity_weight := (setup.knobs ->> 'popularity_weight')::float8;
    freshness_weight := (setup.knobs ->> 'freshness_weight')::float8;
    half_life := (setup.knobs ->> 'freshness_half_life_years')::float8;
    diversity_cap := (setup.knobs ->> 'diversity_cap')::integer;
    pool := (setup.knobs ->> 'candidate_pool')::integer;

    with acted as (
        select o.media_item_id
        from rec_outcomes as o
        where o.user_id = media_swipe_deck_v1.user_id
          and o.outcome_type in ('like', 'dislike', 'watchlist', 'rating')
    ),
    -- The catalogue minus what the user acted on: every source draws its pool from here, so
    -- a user who acted on the top of every source still gets the titles they have not seen.
    -- Not materialized: each source keeps walking its own index (popularity, year) and stops
    -- after `pool` unseen rows instead of the whole catalogue being copied per deck.
    unseen as not materialized (
        select m.id, m.genres, m.popularity, m.year
        from media_items as m
        where not exists (select 1 from acted where acted.media_item_id = m.id)
    ),
    prefs as (
        select p.genre, p.weight / nullif(max(p.weight) over (), 0) as weight
        from recsys_user_prefs as p
        where p.user_id = media_swipe_deck_v1.user_id and p.weight > 0
    ),
    cf as (
        select c.media_item_id, c.score
        from cf_recos as c
        where c.user_id = media_swipe_deck_v1.user_id
          and not exists (select 1 from acted where acted.media_item_id = c.media_item_id)
        order by c.score desc
        limit pool
    ),
    candidates as (
        select cf.media_item_id as id from cf
        union
        (select u.id from unseen as u
         where u.genres && (select coalesce(array_agg(prefs.genre), '{}') from prefs)
         order by u.popularity desc limit pool)
        union
        (select u.id from unseen as u order by u.popularity desc limit pool)
        union
        (select u.id from unseen as u order by u.year desc nulls last limit pool)
    ),
    bounds as (
        -- The user's best CF score over all their scores, acted or not, as in v1.
        select (select max(c.score) from cf_recos as c
                where c.user_id = media_swipe_deck_v1.user_id) as max_cf,
               (select m.popularity from media_items as m
                order by m.popularity desc limit 1) as max_popularity,
               extract(year from now())::integer as this_year
    ),
    scored as (
        select m.id, m.title, m.genres, m.year,
               cf_weight * coalesce(greatest(cf.score, 0) / nullif(b.max_cf, 0), 0) as cf_part,
               genre_weight * coalesce(
                   (select max(prefs.weight) from prefs where prefs.genre = any(m.genres)), 0
               ) as genre_part,
               popularity_weight * coalesce(
                   ln(1 + m.popularity) / nullif(ln(1 + b.max_popularity), 0), 0
               ) as popularity_part,
               freshness_weight * case
                   when m.year is null then 0
                   else power(0.5, greatest(b.this_year - m.year, 0) / half_life)
               end as freshness_part
        from candidates as c
        join media_items as m on m.id = c.id
        cross join bounds as b
        left join cf on cf.media_item_id = m.id
    ),
    ranked as (
        select s.*,
               s.cf_part + s.genre_part + s.popularity_part + s.freshness_part as score,
               case greatest(s.cf_part, s.genre_part, s.popularity_part, s.freshness_part)
                   when s.cf_part then 'cf'
                   when s.genre_part then 'genre'
                   when s.popularity_part then 'popularity'
                   else 'freshness'
               end as source
        from scored as s
    ),
    capped as (
        select r.*,
               row_number() over (
                   partition by coalesce(r.genres[1], '') order by r.score desc, r.id
               ) as genre_rank
        from ranked as r
    ),
    deck as (
        select c.*,
               row_number() over (
                   order by c.genre_rank > diversity_cap, c.score desc, c.id
               )::integer as position
        from capped as c
        order by position
        limit deck_limit
    ),
    served as (
        insert into rec_impressions
            (user_id, rec_request_id, media_item_id, position, source, request_context, created_at)
        select media_swipe_deck_v1.user_id, request_id, d.id, d.position, d.source,
               jsonb_build_object(
                   'experiments', setup.experiments,
                   'platform', media_swipe_deck_v1.platform,
                   'app_version', media_swipe_deck_v1.app_version,
                   'ranking', setup.ranking
               ),
               now()
        from deck as d
        returning media_item_id, position
    )
    select jsonb_agg(
               jsonb_build_object(
                   'media_item_id', d.id, 'title', d.title, 'genres', to_jsonb(d.genres),
                   'year', d.year, 'position', d.position, 'source', d.source,
                   'score', round(d.score::numeric, 6)
               ) order by d.position
           )
    into items
    from served
    join deck as d on d.id = served.media_item_id;

    return jsonb_build_object(
        'rec_request_id', request_id,
        'experiments', setup.experiments,
        'ranking', setup.ranking,
        'items', coalesce(items, '[]'::jsonb)
    );
end
$$;
