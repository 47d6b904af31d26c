-- GrowthBook-compatible hashing, bucketing and targeting (hash version 2 for variants,
-- version 1 for namespaces). The Python twin is recsys_experiments/lib/; the two must agree
-- bit for bit, so every computation here is float8 in the same order as the Python code.
-- All functions are pure: immutable, parallel safe, fixed search_path.

create or replace function rec_fnv1a32(input text) returns bigint
language plpgsql immutable strict parallel safe
set search_path = pg_catalog
as $$
declare
    bytes bytea := convert_to(input, 'UTF8');
    hash bigint := 2166136261;
begin
    for i in 0 .. length(bytes) - 1 loop
        hash := ((hash # get_byte(bytes, i)) * 16777619) & 4294967295;
    end loop;
    return hash;
end
$$;

create or replace function rec_hash_point(seed text, input text, version integer)
returns double precision
language sql immutable strict parallel safe
set search_path = pg_catalog, public
as $$
    select case version
        when 2 then (rec_fnv1a32(rec_fnv1a32(seed || input)::text) % 10000)::float8 / 10000::float8
        when 1 then (rec_fnv1a32(input || seed) % 1000)::float8 / 1000::float8
    end
$$;

create or replace function rec_in_namespace(
    user_id text, namespace_name text, range_start double precision, range_end double precision
) returns boolean
language sql immutable strict parallel safe
set search_path = pg_catalog, public
as $$
    select point >= range_start and point < range_end
    from (select rec_hash_point('__' || namespace_name, user_id, 1) as point) as hashed
$$;

-- Numeric dotted parts with trailing zeros dropped: 1.10 = 1.10.0 > 1.9.2.
create or replace function rec_app_version_key(version text) returns integer[]
language plpgsql immutable strict parallel safe
set search_path = pg_catalog
as $$
declare
    parts integer[];
begin
    if version !~ '^\d{1,9}(\.\d{1,9}){0,3}$' then
        return null;
    end if;
    parts := string_to_array(version, '.')::integer[];
    while cardinality(parts) > 1 and parts[cardinality(parts)] = 0 loop
        parts := parts[1:cardinality(parts) - 1];
    end loop;
    return parts;
end
$$;

-- Whether a request matches an experiment's targeting; version bounds are inclusive and a
-- rule the request cannot answer (no platform, no or malformed app version) does not match.
create or replace function rec_is_targeted(
    target_platform text,
    min_app_version text,
    max_app_version text,
    request_platform text,
    request_app_version text
) returns boolean
language plpgsql immutable parallel safe
set search_path = pg_catalog, public
as $$
declare
    version integer[];
begin
    if target_platform is not null and request_platform is distinct from target_platform then
        return false;
    end if;
    if min_app_version is null and max_app_version is null then
        return true;
    end if;
    version := rec_app_version_key(request_app_version);
    if version is null then
        return false;
    end if;
    if min_app_version is not null and version < rec_app_version_key(min_app_version) then
        return false;
    end if;
    return not (max_app_version is not null and version > rec_app_version_key(max_app_version));
end
$$;

create or replace function rec_equal_weights(variation_count integer) returns double precision[]
language sql immutable strict parallel safe
set search_path = pg_catalog
as $$
    select case
        when variation_count <= 0 then '{}'::float8[]
        else array_fill(1::float8 / variation_count::float8, array[variation_count])
    end
$$;

-- GrowthBook's getBucketRanges: variant i covers [sum of earlier weights, that +
-- coverage * weight_i). Coverage is clamped to [0, 1]; weights that are missing, of the wrong
-- length or not summing to 1 +- 0.01 fall back to equal weights. Each range starts at the
-- cumulative weight whatever the coverage, so raising traffic never moves an enrolled user.
create or replace function rec_bucket_ranges(
    variation_count integer, coverage double precision, weights double precision[]
) returns table (range_start double precision, range_end double precision)
language plpgsql immutable parallel safe
set search_path = pg_catalog, public
as $$
declare
    clamped float8 := least(greatest(coalesce(coverage, 1::float8), 0::float8), 1::float8);
    total float8 := 0;
    cumulative float8 := 0;
    weight float8;
begin
    if weights is null or cardinality(weights) <> variation_count then
        weights := rec_equal_weights(variation_count);
    end if;
    foreach weight in array weights loop
        total := total + weight;
    end loop;
    if total < 0.99::float8 or total > 1.01::float8 then
        weights := rec_equal_weights(variation_count);
    end if;
    foreach weight in array weights loop
        range_start := cumulative;
        cumulative := cumulative + weight;
        range_end := range_start + clamped * weight;
        return next;
    end loop;
end
$$;

-- GrowthBook's chooseVariation: the 0-based index of the first range holding the point, or -1.
create or replace function rec_choose_variation(
    point double precision, range_starts double precision[], range_ends double precision[]
) returns integer
language plpgsql immutable parallel safe
set search_path = pg_catalog
as $$
begin
    for i in 1 .. coalesce(cardinality(range_starts), 0) loop
        if point >= range_starts[i] and point < range_ends[i] then
            return i - 1;
        end if;
    end loop;
    return -1;
end
$$;

-- The whole hashed decision for one user, without touching any table: targeting, namespace,
-- then the version-2 point against traffic-scaled ranges of the weights normalised to sum 1
-- (a vector already within 1e-9 of 1 is used as it is). NULL means not enrolled.
create or replace function rec_pick_variant(
    salt text,
    user_id text,
    variants jsonb,
    traffic double precision,
    namespace_name text,
    namespace_start double precision,
    namespace_end double precision,
    target_platform text,
    min_app_version text,
    max_app_version text,
    request_platform text,
    request_app_version text
) returns text
language plpgsql immutable parallel safe
set search_path = pg_catalog, public
as $$
declare
    weights float8[];
    range_starts float8[];
    range_ends float8[];
    total float8 := 0;
    weight float8;
    chosen integer;
begin
    if not rec_is_targeted(
        target_platform, min_app_version, max_app_version, request_platform, request_app_version
    ) then
        return null;
    end if;
    if namespace_name is not null
        and not rec_in_namespace(user_id, namespace_name, namespace_start, namespace_end) then
        return null;
    end if;
    weights := array(
        select (v.item ->> 'weight')::float8
        from jsonb_array_elements(variants) with ordinality as v(item, n)
        order by v.n
    );
    foreach weight in array weights loop
        total := total + weight;
    end loop;
    if abs(total - 1::float8) > 1e-9::float8 then
        weights := array(select w.x / total from unnest(weights) with ordinality as w(x, n) order by w.n);
    end if;
    select array_agg(r.range_start order by r.n), array_agg(r.range_end order by r.n)
    into range_starts, range_ends
    from rec_bucket_ranges(cardinality(weights), traffic, weights)
         with ordinality as r(range_start, range_end, n);
    chosen := rec_choose_variation(rec_hash_point(salt, user_id, 2), range_starts, range_ends);
    if chosen < 0 then
        return null;
    end if;
    return variants -> chosen ->> 'name';
end
$$;
