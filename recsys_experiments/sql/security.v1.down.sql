grant execute on function rec_set_user_variant(text, uuid, text, uuid) to public;
alter default privileges in schema public
    revoke usage, select, update on sequences from recsys_service;
alter default privileges in schema public
    revoke select, insert, update, delete on tables from recsys_service;
revoke all on all sequences in schema public from recsys_service;
revoke all on all tables in schema public from recsys_service, recsys_authenticated;
revoke usage on schema public from recsys_authenticated, recsys_service;
revoke execute on function rec_set_user_variant(text, uuid, text, uuid) from recsys_service;

do $$
declare
    policy record;
begin
    for policy in
        select schemaname, tablename, policyname from pg_policies where schemaname = 'public'
    loop
        execute format('drop policy %I on %I.%I', policy.policyname, policy.schemaname, policy.tablename);
    end loop;
    for policy in
        select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind = 'r' and c.relrowsecurity
    loop
        execute format('alter table %I disable row level security', policy.relname);
    end loop;
end
$$;

drop function if exists app_current_user_id();
