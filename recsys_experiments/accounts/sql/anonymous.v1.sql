-- The merge audit of anonymous identities holds user ids: like every user-data table it gets
-- RLS, and only the service role (admin pages, the merge itself) may read or write it.
alter table accounts_identity_merge enable row level security;
create policy accounts_identity_merge_service_all on accounts_identity_merge
    for all to recsys_service using (true) with check (true);
