-- rec_experiment_phases: RLS like rec_experiments. The service role may do everything; end
-- users may read the phases of the experiments they may read (active ones: the subquery runs
-- under rec_experiments' own policy).
alter table rec_experiment_phases enable row level security;
create policy rec_experiment_phases_service_all on rec_experiment_phases
    for all to recsys_service using (true) with check (true);
create policy rec_experiment_phases_visible_select on rec_experiment_phases
    for select to recsys_authenticated
    using (exists (select 1 from rec_experiments as e where e.id = experiment_id));
grant select on rec_experiment_phases to recsys_authenticated;
grant select, insert, update, delete on rec_experiment_phases to recsys_service;
grant usage, select, update on sequence rec_experiment_phases_id_seq to recsys_service;
