revoke all on rec_experiment_phases from recsys_authenticated, recsys_service;
revoke all on sequence rec_experiment_phases_id_seq from recsys_service;
drop policy if exists rec_experiment_phases_visible_select on rec_experiment_phases;
drop policy if exists rec_experiment_phases_service_all on rec_experiment_phases;
alter table rec_experiment_phases disable row level security;
