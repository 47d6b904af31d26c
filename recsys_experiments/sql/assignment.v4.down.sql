-- Restores v3 of rec_assign_variant(text, uuid, text, text) (assignment.v3.sql).

-- v3 of rec_assign_variant(text, uuid, text, text): the v2 logic, serialised with salt
-- rotation. v2 read the salt without a lock, so a first assignment in flight could hash with
-- the old salt and store its row after a rotation had committed (and deleted the automatic
-- assignments): a stale assignment the rotation promised to re-randomise. v3 locks the
-- experiment row FOR SHARE before hashing and re-reads the salt under that lock. A rotation
-- takes the row FOR UPDATE (recsys_experiments/services/experiments.py), so either it waits
-- until the assignment commits and then deletes the row, or the assignment waits until the
-- rotation commits and then hashes with the new salt.

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
    chosen text;
begin
    if current_setting('role') = 'recsys_authenticated'
        and rec_assign_variant.user_id is distinct from app_current_user_id() then
        raise exception 'an end user may only be assigned themselves'
            using errcode = 'insufficient_privilege';
    end if;
    select e.* into experiment
    from rec_active_experiments() as e
    where e.key = rec_assign_variant.experiment_key;
    if not found then
        return null;
    end if;

    -- Sticky: a stored assignment needs no lock (the common case stays lock-free).
    select a.variant into chosen
    from rec_user_experiment_assignments as a
    where a.experiment_id = experiment.id and a.user_id = rec_assign_variant.user_id;
    if found then
        return chosen;
    end if;

    -- First assignment: hold the experiment row until this transaction ends, then read the
    -- definition again. This volatile function's next statement takes a fresh snapshot, so it
    -- sees a rotation (or end) that committed while we waited for the lock.
    perform 1 from rec_experiments as e where e.id = experiment.id for share;
    select e.* into experiment
    from rec_active_experiments() as e
    where e.id = experiment.id;
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
