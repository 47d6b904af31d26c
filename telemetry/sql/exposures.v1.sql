-- rec_exposures (telemetry.models.Exposure): RLS exactly like rec_outcomes
-- (recsys_experiments/sql/security.v1.sql). The service role may do everything; end users
-- read and insert only their own rows (the exposure path runs as the user), and update or
-- delete none.
alter table rec_exposures enable row level security;
create policy rec_exposures_service_all on rec_exposures
    for all to recsys_service using (true) with check (true);
create policy rec_exposures_own_select on rec_exposures
    for select to recsys_authenticated
    using (user_id = (select app_current_user_id()));
create policy rec_exposures_own_insert on rec_exposures
    for insert to recsys_authenticated
    with check (user_id = (select app_current_user_id()));
grant select, insert on rec_exposures to recsys_authenticated;
grant select, insert, update, delete on rec_exposures to recsys_service;
