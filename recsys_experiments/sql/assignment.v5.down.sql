-- Restores v4 of rec_assign_variant(text, uuid, text, text) (assignment.v4.sql).

-- v4 of rec_assign_variant(text, uuid, text, text): the v3 logic (including the FOR SHARE
-- lock on the experiment row before hashing), and a first assignment records the experiment's
-- current phase (rec_experiment_phases: the open phase with the highest number) in
-- rec_user_experiment_assignments.phase. A phase change takes the experiment row FOR UPDATE
-- (recsys_experiments/services/experiments.py), so the phase read under the FOR SHARE lock is
-- the one whose definition the user is hashed with. NULL when the experiment has no phase
-- (a row written directly, not through the services).

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
