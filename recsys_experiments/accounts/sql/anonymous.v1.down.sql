drop policy if exists accounts_identity_merge_service_all on accounts_identity_merge;
alter table accounts_identity_merge disable row level security;
