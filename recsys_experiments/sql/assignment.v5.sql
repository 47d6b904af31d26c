-- v5 of rec_assign_variant(text, uuid, text, text): the v4 logic, reading rec_experiments by
-- its key and id instead of calling rec_active_experiments() twice. That function cannot be
-- inlined (its SET search_path), so each call read and sorted every active experiment: a
-- first assignment cost two such calls per experiment, a sticky lookup one. v5 applies the
-- same predicate (status 'active' inside the started_at/ended_at window) to the one row it
-- wants, and reads the stored assignment in the same statement. The lock and the re-read
-- under it stay two statements, so the re-read still takes a fresh snapshot after the wait.

-- The user's variant in an active experiment: the stored assignment if there is one (auto or
-- manual), else the hashed variant, stored as 'auto'. NULL (and nothing stored) when the
-- experiment is not active or the user is outside its traffic, namespace or targeting.
-- Concurrent first calls for one user store one row and all return its variant.
-- Security definer: end users may not write assignments, except through this function, and
-- then only their own (an end user assigning someone else is refused).
create or replace function rec_assign_variant(
    experiment_key text, user_id uuid, platform text, app_version text
) returns text
language plpgsql volatile security definer
set search_path = public, pg_temp
as $$
#variable_conflict use_column
declare
    experiment record;
    active_id uuid;
    chosen text;
begin
    if current_setting('role') = 'recsys_authenticated'
        and rec_assign_variant.user_id is distinct from app_current_user_id() then
        raise exception 'an end user may only be assigned themselves'
            using errcode = 'insufficient_privilege';
    end if;
    -- Active as rec_active_experiments() says, and the stored assignment if any.
    select e.id, a.variant into active_id, chosen
    from rec_experiments as e
    left join rec_user_experiment_assignments as a
        on a.experiment_id = e.id and a.user_id = rec_assign_variant.user_id
    where e.key = rec_assign_variant.experiment_key
      and e.status = 'active'
      and (e.started_at is null or e.started_at <= now())
      and (e.ended_at is null or e.ended_at > now());
    if not found then
        return null;
    end if;
    -- Sticky: a stored assignment needs no lock (the common case stays lock-free).
    if chosen is not null then
        return chosen;
    end if;

    -- First assignment: hold the experiment row until this transaction ends, then read the
    -- definition again. This volatile function's next statement takes a fresh snapshot, so it
    -- sees a rotation (or end) that committed while we waited for the lock.
    perform 1 from rec_experiments as e where e.id = active_id for share;
    select e.id, e.salt, e.variants, e.traffic, e.namespace_name, e.namespace_start,
           e.namespace_end, e.platform, e.min_app_version, e.max_app_version
    into experiment
    from rec_experiments as e
    where e.id = active_id
      and e.status = 'active'
      and (e.started_at is null or e.started_at <= now())
      and (e.ended_at is null or e.ended_at > now());
    if not found then
        return null;
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
        (experiment_id, user_id, variant, assignment_mode, assigned_at, phase)
    values (
        experiment.id, rec_assign_variant.user_id, chosen, 'auto', now(),
        (select max(p.number) from rec_experiment_phases as p
         where p.experiment_id = experiment.id and p.ended_at is null)
    )
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
