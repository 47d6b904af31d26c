drop function if exists rec_experiments_at(uuid, timestamptz);
revoke all on rec_conversions from recsys_authenticated, recsys_service;
drop policy if exists rec_conversions_own_insert on rec_conversions;
drop policy if exists rec_conversions_own_select on rec_conversions;
drop policy if exists rec_conversions_service_all on rec_conversions;
alter table rec_conversions disable row level security;
