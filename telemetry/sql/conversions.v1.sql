-- rec_conversions (telemetry.models.Conversion): RLS exactly like rec_outcomes
-- (recsys_experiments/sql/security.v1.sql): the service role may do everything; an end user
-- reads and inserts only their own rows, and may neither update nor delete.
alter table rec_conversions enable row level security;
create policy rec_conversions_service_all on rec_conversions
    for all to recsys_service using (true) with check (true);
create policy rec_conversions_own_select on rec_conversions
    for select to recsys_authenticated
    using (user_id = (select app_current_user_id()));
create policy rec_conversions_own_insert on rec_conversions
    for insert to recsys_authenticated
    with check (user_id = (select app_current_user_id()));
grant select, insert on rec_conversions to recsys_authenticated;
grant select, insert, update, delete on rec_conversions to recsys_service;

-- The experiments tag of an event that happened at `at`: {experiment key: variant} for every
-- assignment of the user in force then, i.e. stored at or before `at` in an experiment that
-- was running at `at` (one of its phases covered `at`; an experiment without phase rows, one
-- written directly, counts from started_at until ended_at). '{}' when there is none.
-- Security definer, so that an event recorded after its experiment ended (which end users can
-- no longer read) is still attributed; an end user may only ask about themselves.
-- Errors: insufficient_privilege (42501) when an end user asks about someone else.
create or replace function rec_experiments_at(user_id uuid, at timestamptz) returns jsonb
language plpgsql stable security definer
set search_path = public, pg_temp
as $$
begin
    if current_setting('role') = 'recsys_authenticated'
        and rec_experiments_at.user_id is distinct from app_current_user_id() then
        raise exception 'rec_experiments_at answers only for the current user'
            using errcode = 'insufficient_privilege';
    end if;
    return coalesce((
        select jsonb_object_agg(e.key, a.variant order by e.key)
        from rec_user_experiment_assignments as a
        join rec_experiments as e on e.id = a.experiment_id
        where a.user_id = rec_experiments_at.user_id
          and a.assigned_at <= rec_experiments_at.at
          and e.status <> 'draft'
          and case
              when exists (select 1 from rec_experiment_phases as p where p.experiment_id = e.id)
              then exists (
                  select 1 from rec_experiment_phases as p
                  where p.experiment_id = e.id
                    and p.started_at <= rec_experiments_at.at
                    and (p.ended_at is null or p.ended_at > rec_experiments_at.at))
              else e.started_at <= rec_experiments_at.at
                   and (e.ended_at is null or e.ended_at > rec_experiments_at.at)
          end
    ), '{}'::jsonb);
end
$$;

revoke execute on function rec_experiments_at(uuid, timestamptz) from public;
grant execute on function rec_experiments_at(uuid, timestamptz)
    to recsys_authenticated, recsys_service;
