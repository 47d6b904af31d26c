-- Roles, the request's user id, row-level security and least-privilege grants.
--   recsys_authenticated  end users (RLS applies): read their own rows and active
--                         experiments, insert their own impressions and outcomes.
--   recsys_service        admin and ops: every row, through explicit policies.
-- Both are NOLOGIN and granted to the application's login role, which switches to one of
-- them per transaction (SET LOCAL ROLE) and sets app.user_id for app_current_user_id().
-- Roles are cluster-wide, so they are created only when missing and never dropped here.

do $$
begin
    if not exists (select from pg_roles where rolname = 'recsys_authenticated') then
        create role recsys_authenticated nologin;
    end if;
    if not exists (select from pg_roles where rolname = 'recsys_service') then
        create role recsys_service nologin;
    end if;
end
$$;

grant recsys_authenticated to current_user;
grant recsys_service to current_user;

-- The caller's user id for this transaction (NULL when none is set).
create or replace function app_current_user_id() returns uuid
language sql stable parallel safe
set search_path = pg_catalog
as $$
    select nullif(current_setting('app.user_id', true), '')::uuid
$$;

-- Every table holding user data: RLS on, and the service role may do everything.
do $$
declare
    user_data_table text;
begin
    foreach user_data_table in array array[
        'accounts_user', 'accounts_user_groups', 'accounts_user_user_permissions',
        'authtoken_token', 'django_admin_log',
        'rec_experiments', 'rec_user_experiment_assignments', 'rec_experiment_audit_log',
        'rec_impressions', 'rec_outcomes', 'recsys_user_prefs', 'cf_recos'
    ] loop
        execute format('alter table %I enable row level security', user_data_table);
        execute format(
            'create policy %I on %I for all to recsys_service using (true) with check (true)',
            user_data_table || '_service_all', user_data_table
        );
    end loop;
    -- End users read their own rows; the user-id function is evaluated once per query.
    foreach user_data_table in array array[
        'rec_user_experiment_assignments', 'rec_impressions', 'rec_outcomes',
        'recsys_user_prefs', 'cf_recos'
    ] loop
        execute format(
            'create policy %I on %I for select to recsys_authenticated '
            'using (user_id = (select app_current_user_id()))',
            user_data_table || '_own_select', user_data_table
        );
    end loop;
    -- ... and write only their own impressions and outcomes (the deck and outcome paths).
    foreach user_data_table in array array['rec_impressions', 'rec_outcomes'] loop
        execute format(
            'create policy %I on %I for insert to recsys_authenticated '
            'with check (user_id = (select app_current_user_id()))',
            user_data_table || '_own_insert', user_data_table
        );
    end loop;
end
$$;

create policy rec_experiments_active_select on rec_experiments
    for select to recsys_authenticated using (status = 'active');

-- Least privilege: the end-user role gets exactly what the deck, the outcome path and
-- me/experiments need; no UPDATE or DELETE anywhere.
grant usage on schema public to recsys_authenticated, recsys_service;
grant select on media_items, rec_experiments, rec_user_experiment_assignments,
    rec_impressions, rec_outcomes, recsys_user_prefs, cf_recos
    to recsys_authenticated;
grant insert on rec_impressions, rec_outcomes to recsys_authenticated;

grant select, insert, update, delete on all tables in schema public to recsys_service;
grant usage, select, update on all sequences in schema public to recsys_service;
alter default privileges in schema public
    grant select, insert, update, delete on tables to recsys_service;
alter default privileges in schema public
    grant usage, select, update on sequences to recsys_service;

-- Overrides are for admins only.
revoke execute on function rec_set_user_variant(text, uuid, text, uuid) from public;
grant execute on function rec_set_user_variant(text, uuid, text, uuid) to recsys_service;
