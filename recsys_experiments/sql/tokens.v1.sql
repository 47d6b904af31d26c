-- API tokens are django-rest-knox's now: knox_authtoken stores a SHA-512 digest per token.
-- Like every table holding user data it gets RLS: the service role (admin pages) may do
-- everything; the login role that authenticates requests (before any role switch) owns it.
-- django-axes' tables hold usernames and addresses of login attempts: the same.
do $$
declare
    user_data_table text;
begin
    foreach user_data_table in array array[
        'knox_authtoken', 'axes_accessattempt', 'axes_accessattemptexpiration',
        'axes_accesslog', 'axes_accessfailurelog'
    ] loop
        execute format('alter table %I enable row level security', user_data_table);
        execute format(
            'create policy %I on %I for all to recsys_service using (true) with check (true)',
            user_data_table || '_service_all', user_data_table
        );
    end loop;
end
$$;

-- DRF's tokens were stored in plain text and are no longer accepted: delete them. Their
-- clients get a 401 and log in again (docs/deck.md).
delete from authtoken_token;
