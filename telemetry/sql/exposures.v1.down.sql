revoke all on rec_exposures from recsys_authenticated, recsys_service;
drop policy if exists rec_exposures_own_insert on rec_exposures;
drop policy if exists rec_exposures_own_select on rec_exposures;
drop policy if exists rec_exposures_service_all on rec_exposures;
alter table rec_exposures disable row level security;
