-- v5 of the deck (deck.v4.sql): the same decks, but a user with a long history no longer
-- pays for it (docs/performance.md, "Heavy user (deck v5)"). v4 read every acted title of the
-- user into a CTE and hashed it in each source: a user with 30,000 outcomes read 30,000 rows
-- for a 20-item deck. v5 counts the user's outcome rows up to `10 * candidate_pool`; below
-- that it hashes the acted titles as v4 does, at or above it each source probes rec_outcomes
-- (user_id, media_item_id) (idx_rec_outcomes_user_item, on every partition) for the titles it
-- walks, within a budget of `4 * candidate_pool` walked rows per catalogue walk, and hashes
-- after all when a walk keeps fewer than `candidate_pool` titles within it. Only
-- media_swipe_deck_v1 changes; rec_deck_setup, the indexes and media_item_genres are v4's.

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
    cf_ids bigint[];
    cf_scores float8[];
    candidate_ids bigint[];
    items jsonb;
    probe_above integer;
    probing boolean;
    short boolean;
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

    -- 1. The candidates' ids. Each source walks its own index in its own order and drops
    -- the titles the user acted on, in one of two ways (the same candidates either way):
    --   * hashing: the user's acted titles are read once (a CTE) and each source checks a
    --     hashed NOT IN: costs the user's outcome rows. Used for a user with fewer than
    --     `probe_above` outcome rows (of any type), counted with a LIMIT through an index:
    --     at most `probe_above` index entries;
    --   * probing: each walked title is looked up in rec_outcomes (user_id, media_item_id),
    --     one index probe per partition, stopping at the first hit: costs the rows walked,
    --     whatever the user's history. A scalar subquery (never hashed, never an anti-join
    --     over all the user's outcomes). The catalogue walks stop after `4 * pool` rows;
    --     when one of them keeps fewer than `pool` titles within that budget (a user who
    --     acted on most of a source's top titles), the candidates are taken again by hashing,
    --     so the cost is at most the budget's probes plus what hashing costs. A probe costs
    --     about as much as reading five to ten outcome rows, hence the threshold.
    -- Two statements, not one with a CASE: a walk under a LIMIT that hashing leaves null is
    -- planned as a full sort of its source.
    -- media_item_id is never null: NOT IN means NOT EXISTS here.
    probe_above := 10 * pool;
    probing := (select count(*) from (
                    select 1 from rec_outcomes as o
                    where o.user_id = media_swipe_deck_v1.user_id
                    limit probe_above) as o) >= probe_above;
    short := true;
    if probing then
        with
        -- The user's CF scores in score order (at most their CF rows, not a catalogue walk).
        cf as (
            select c.media_item_id, c.score
            from (select c.media_item_id, c.score
                  from cf_recos as c
                  where c.user_id = media_swipe_deck_v1.user_id
                  order by c.score desc, c.media_item_id
                  offset 0) as c
            where (select 1 from rec_outcomes as o
                  where o.user_id = media_swipe_deck_v1.user_id
                    and o.media_item_id = c.media_item_id
                    and o.outcome_type in ('like', 'dislike', 'watchlist', 'rating')
                  limit 1) is null
            order by c.score desc, c.media_item_id
            limit pool
        ),
        preferred as (
            select distinct p.genre
            from recsys_user_prefs as p
            where p.user_id = media_swipe_deck_v1.user_id and p.weight > 0
        ),
        -- The top `pool` unseen titles of each preferred genre contain the top `pool` unseen
        -- titles having any preferred genre.
        genre_walks as (
            select pg.genre, t.media_item_id, t.popularity
            from preferred as pg
            cross join lateral (
                select g.media_item_id, g.popularity
                from (select g.media_item_id, g.popularity
                      from media_item_genres as g
                      where g.genre = pg.genre
                      order by g.popularity desc, g.media_item_id
                      limit 4 * pool) as g
                where (select 1 from rec_outcomes as o
                      where o.user_id = media_swipe_deck_v1.user_id
                        and o.media_item_id = g.media_item_id
                        and o.outcome_type in ('like', 'dislike', 'watchlist', 'rating')
                      limit 1) is null
                order by g.popularity desc, g.media_item_id
                limit pool
            ) as t
        ),
        genre_top as (
            select distinct t.media_item_id, t.popularity from genre_walks as t
        ),
        popular as (
            select m.id
            from (select m.id, m.popularity from media_items as m
                  order by m.popularity desc, m.id limit 4 * pool) as m
            where (select 1 from rec_outcomes as o
                  where o.user_id = media_swipe_deck_v1.user_id
                    and o.media_item_id = m.id
                    and o.outcome_type in ('like', 'dislike', 'watchlist', 'rating')
                  limit 1) is null
            order by m.popularity desc, m.id
            limit pool
        ),
        newest as (
            select m.id
            from (select m.id, m.year from media_items as m
                  order by m.year desc nulls last, m.id limit 4 * pool) as m
            where (select 1 from rec_outcomes as o
                  where o.user_id = media_swipe_deck_v1.user_id
                    and o.media_item_id = m.id
                    and o.outcome_type in ('like', 'dislike', 'watchlist', 'rating')
                  limit 1) is null
            order by m.year desc nulls last, m.id
            limit pool
        ),
        candidates as (
            select cf.media_item_id as id from cf
            union
            (select t.media_item_id from genre_top as t
             order by t.popularity desc, t.media_item_id limit pool)
            union
            select popular.id from popular
            union
            select newest.id from newest
        )
        select (select coalesce(array_agg(cf.media_item_id order by cf.media_item_id), '{}')
                from cf),
               (select coalesce(array_agg(cf.score order by cf.media_item_id), '{}') from cf),
               (select coalesce(array_agg(c.id), '{}') from candidates as c),
               -- A catalogue walk that kept fewer than `pool` titles within its budget.
               (
                   (select count(*) from popular) < pool
                   or (select count(*) from newest) < pool
                   or exists (select 1 from preferred as pg
                              where (select count(*) from genre_walks as t
                                     where t.genre = pg.genre) < pool)
               )
        into cf_ids, cf_scores, candidate_ids, short;
    end if;
    if short then
        -- Hashing (v4's statement): the acted titles read once, a hashed NOT IN per source.
        with acted as materialized (
            select o.media_item_id
            from rec_outcomes as o
            where o.user_id = media_swipe_deck_v1.user_id
                and o.outcome_type in ('like', 'dislike', 'watchlist', 'rating')
        ),
        cf as (
            select c.media_item_id, c.score
            from cf_recos as c
            where c.user_id = media_swipe_deck_v1.user_id
              and c.media_item_id not in (select acted.media_item_id from acted)
            order by c.score desc, c.media_item_id
            limit pool
        ),
        -- The top `pool` unseen titles of each preferred genre contain the top `pool` unseen
        -- titles having any preferred genre.
        genre_top as (
            select distinct t.media_item_id, t.popularity
            from (select distinct p.genre
                  from recsys_user_prefs as p
                  where p.user_id = media_swipe_deck_v1.user_id and p.weight > 0) as pg
            cross join lateral (
                select g.media_item_id, g.popularity
                from media_item_genres as g
                where g.genre = pg.genre
                  and g.media_item_id not in (select acted.media_item_id from acted)
                order by g.popularity desc, g.media_item_id
                limit pool
            ) as t
        ),
        candidates as (
            select cf.media_item_id as id from cf
            union
            (select t.media_item_id from genre_top as t
             order by t.popularity desc, t.media_item_id limit pool)
            union
            (select m.id from media_items as m
             where m.id not in (select acted.media_item_id from acted)
             order by m.popularity desc, m.id limit pool)
            union
            (select m.id from media_items as m
             where m.id not in (select acted.media_item_id from acted)
             order by m.year desc nulls last, m.id limit pool)
        )
        select (select coalesce(array_agg(cf.media_item_id order by cf.media_item_id), '{}')
                from cf),
               (select coalesce(array_agg(cf.score order by cf.media_item_id), '{}') from cf),
               (select coalesce(array_agg(c.id), '{}') from candidates as c)
        into cf_ids, cf_scores, candidate_ids;
    end if;

    -- 2. Score, rank and record them: the candidates are read by primary key. The small
    -- CTEs are materialized so that no per-row expression re-reads them.
    with prefs as materialized (
        select p.genre, p.weight / nullif(max(p.weight) over (), 0) as weight
        from recsys_user_prefs as p
        where p.user_id = media_swipe_deck_v1.user_id and p.weight > 0
    ),
    cf as materialized (
        select x.media_item_id, x.score from unnest(cf_ids, cf_scores) as x(media_item_id, score)
    ),
    bounds as materialized (
        -- The user's best CF score over all their scores, acted or not, as in v1.
        select (select max(c.score) from cf_recos as c
                where c.user_id = media_swipe_deck_v1.user_id) as max_cf,
               (select m.popularity from media_items as m
                order by m.popularity desc limit 1) as max_popularity,
               extract(year from now())::integer as this_year
    ),
    scored as materialized (
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
        from media_items as m
        cross join bounds as b
        left join cf on cf.media_item_id = m.id
        where m.id = any(candidate_ids)
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
