-- Sticky assignment. The database is the authority: the deck, the admin API and the
-- commands all assign through these functions.

-- Active experiments: status active and inside the started_at/ended_at window.
create or replace function rec_active_experiments()
returns table (
    id uuid,
    key text,
    variants jsonb,
    salt text,
    traffic double precision,
    namespace_name text,
    namespace_start double precision,
    namespace_end double precision,
    platform text,
    min_app_version text,
    max_app_version text,
    started_at timestamptz,
    ended_at timestamptz
)
language sql stable
set search_path = public, pg_temp
as $$
    select e.id, e.key, e.variants, e.salt, e.traffic,
           e.namespace_name, e.namespace_start, e.namespace_end,
           e.platform, e.min_app_version, e.max_app_version,
           e.started_at, e.ended_at
    from rec_experiments as e
    where e.status = 'active'
      and (e.started_at is null or e.started_at <= now())
      and (e.ended_at is null or e.ended_at > now())
    order by e.key
$$;

-- The user's variant in an active experiment: the stored assignment if there is one (auto or
-- manual), else the hashed variant, stored as 'auto'. NULL (and nothing stored) when the
-- experiment is not active or the user is outside its traffic, namespace or targeting.
-- Concurrent first calls for one user store one row and all return its variant.
-- Security definer: end users may not write assignments, except through this function.
create or replace function rec_assign_variant(
    experiment_key text, user_id uuid, platform text, app_version text
) returns text
language plpgsql volatile security definer
set search_path = public, pg_temp
as $$
#variable_conflict use_column
declare
    experiment record;
    chosen text;
begin
    select e.* into experiment
    from rec_active_experiments() as e
    where e.key = rec_assign_variant.experiment_key;
    if not found then
        return null;
    end if;

    select a.variant into chosen
    from rec_user_experiment_assignments as a
    where a.experiment_id = experiment.id and a.user_id = rec_assign_variant.user_id;
    if found then
        return chosen;
    end if;

    chosen := rec_pick_variant(
        experiment.salt, rec_assign_variant.user_id::text, experiment.variants, experiment.traffic,
        experiment.namespace_name, experiment.namespace_start, experiment.namespace_end,
        experiment.platform, experiment.min_app_version, experiment.max_app_version,
        rec_assign_variant.platform, rec_assign_variant.app_version
    );
    if chosen is null then
        return null;
    end if;

    insert into rec_user_experiment_assignments
        (experiment_id, user_id, variant, assignment_mode, assigned_at)
    values (experiment.id, rec_assign_variant.user_id, chosen, 'auto', now())
    on conflict (experiment_id, user_id) do nothing;
    if not found then
        -- Another transaction stored this user first; its row wins.
        select a.variant into chosen
        from rec_user_experiment_assignments as a
        where a.experiment_id = experiment.id and a.user_id = rec_assign_variant.user_id;
    end if;
    return chosen;
end
$$;

create or replace function rec_assign_variant(experiment_key text, user_id uuid) returns text
language sql volatile
set search_path = public, pg_temp
as $$
    select rec_assign_variant(experiment_key, user_id, null::text, null::text)
$$;

-- Manual override (upsert, mode 'manual'). Errors, never a silent no-op:
--   no_data_found (P0002)          unknown experiment
--   invalid_parameter_value (22023) unknown variant
--   object_not_in_prerequisite_state (55000) the experiment has ended
create or replace function rec_set_user_variant(
    experiment_key text, user_id uuid, variant text, admin_id uuid
) returns text
language plpgsql volatile
set search_path = public, pg_temp
as $$
#variable_conflict use_column
declare
    experiment record;
begin
    select e.id, e.status, e.variants into experiment
    from rec_experiments as e
    where e.key = rec_set_user_variant.experiment_key;
    if not found then
        raise exception 'unknown experiment "%"', rec_set_user_variant.experiment_key
            using errcode = 'no_data_found';
    end if;
    if experiment.status = 'ended' then
        raise exception 'experiment "%" has ended', rec_set_user_variant.experiment_key
            using errcode = 'object_not_in_prerequisite_state';
    end if;
    if not exists (
        select 1 from jsonb_array_elements(experiment.variants) as v(item)
        where v.item ->> 'name' = rec_set_user_variant.variant
    ) then
        raise exception 'experiment "%" has no variant "%"',
            rec_set_user_variant.experiment_key, rec_set_user_variant.variant
            using errcode = 'invalid_parameter_value';
    end if;

    insert into rec_user_experiment_assignments
        (experiment_id, user_id, variant, assignment_mode, assigned_by, assigned_at)
    values (
        experiment.id, rec_set_user_variant.user_id, rec_set_user_variant.variant,
        'manual', rec_set_user_variant.admin_id, now()
    )
    on conflict (experiment_id, user_id) do update
        set variant = excluded.variant,
            assignment_mode = 'manual',
            assigned_by = excluded.assigned_by,
            assigned_at = excluded.assigned_at;
    return rec_set_user_variant.variant;
end
$$;
