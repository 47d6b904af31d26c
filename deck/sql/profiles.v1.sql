-- Ranking profiles (deck.models.RankingProfile, docs/deck.md "Ranking profiles"): the
-- database keeps their invariants whoever writes, the admin, a command or raw SQL.
--   * version starts at 1 and grows by one on every change (a save changing nothing keeps it);
--   * every version is copied to rec_ranking_profile_versions in the same transaction;
--   * rec_ranking_profile_bindings mirrors `bindings`, and its unique (kind, value) lets a
--     binding belong to one profile only;
--   * the end-user role reads profiles and bindings (the deck runs as the user) and its own
--     segment row, and writes none of them.

create or replace function rec_ranking_profiles_version() returns trigger
language plpgsql volatile
set search_path = public, pg_temp
as $$
begin
    if jsonb_typeof(new.knobs) is distinct from 'object' then
        raise exception 'ranking profile %: knobs must be a JSON object', new.name
            using errcode = 'check_violation';
    end if;
    if jsonb_typeof(new.bindings) is distinct from 'array' then
        raise exception 'ranking profile %: bindings must be a JSON list', new.name
            using errcode = 'check_violation';
    end if;
    if tg_op = 'UPDATE' then
        if (new.name, new.knobs, new.bindings, new.is_default)
           is not distinct from (old.name, old.knobs, old.bindings, old.is_default) then
            new.version := old.version;
            new.updated_at := old.updated_at;
            new.updated_by_id := old.updated_by_id;
            return new;
        end if;
        new.version := old.version + 1;
    else
        new.version := 1;
    end if;
    new.updated_at := now();
    return new;
end
$$;

create or replace function rec_ranking_profiles_record() returns trigger
language plpgsql volatile
set search_path = public, pg_temp
as $$
declare
    binding jsonb;
begin
    if tg_op = 'UPDATE' and new.version = old.version then
        return null;
    end if;
    if tg_op = 'INSERT' or new.bindings is distinct from old.bindings then
        delete from rec_ranking_profile_bindings where profile_id = new.id;
        for binding in select b.item from jsonb_array_elements(new.bindings) as b(item) loop
            if jsonb_typeof(binding) is distinct from 'object'
               or (select count(*) from jsonb_object_keys(binding)) <> 1
               or not (binding ?| array['namespace', 'segment'])
            then
                raise exception 'ranking profile %: a binding must be {"segment": s} or '
                    '{"namespace": n}, not %', new.name, binding
                    using errcode = 'check_violation';
            end if;
            insert into rec_ranking_profile_bindings (profile_id, kind, value)
            select new.id, e.key, e.value #>> '{}'
            from jsonb_each(binding) as e
            where jsonb_typeof(e.value) = 'string' and e.value #>> '{}' <> '';
            if not found then
                raise exception 'ranking profile %: a binding''s value must be a non-empty '
                    'string, not %', new.name, binding
                    using errcode = 'check_violation';
            end if;
        end loop;
    end if;
    insert into rec_ranking_profile_versions
        (profile_id, name, version, knobs, bindings, is_default, changed_by_id, changed_at)
    values
        (new.id, new.name, new.version, new.knobs, new.bindings, new.is_default,
         new.updated_by_id, new.updated_at);
    return null;
end
$$;

create trigger rec_ranking_profiles_version
    before insert or update on rec_ranking_profiles
    for each row execute function rec_ranking_profiles_version();
create trigger rec_ranking_profiles_record
    after insert or update on rec_ranking_profiles
    for each row execute function rec_ranking_profiles_record();

-- Profiles name their editor (a user): RLS like rec_experiments. Every end user reads every
-- profile (the deck needs the default and its bound ones); only the service role writes.
alter table rec_ranking_profiles enable row level security;
create policy rec_ranking_profiles_service_all on rec_ranking_profiles
    for all to recsys_service using (true) with check (true);
create policy rec_ranking_profiles_deck_select on rec_ranking_profiles
    for select to recsys_authenticated using (true);
grant select on rec_ranking_profiles, rec_ranking_profile_bindings to recsys_authenticated;

-- The audit trail names users too: the service role only.
alter table rec_ranking_profile_versions enable row level security;
create policy rec_ranking_profile_versions_service_all on rec_ranking_profile_versions
    for all to recsys_service using (true) with check (true);

-- The deck reads the user's own segment and fixture (not the traits) to find bound profiles.
create policy recsys_user_segments_own_select on recsys_user_segments
    for select to recsys_authenticated using (user_id = (select app_current_user_id()));
grant select (user_id, fixture, segment) on recsys_user_segments to recsys_authenticated;
