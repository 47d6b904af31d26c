-- v2 of rec_requests_of_other_users(owner uuid, request_ids uuid[]) (first in views.v1.sql).
-- v1 was SECURITY DEFINER, executable by PUBLIC, and trusted its `owner` argument, so an end
-- user could pass someone else's id and learn which request ids belong to other users. v2
-- answers only for the transaction's user, app_current_user_id(): `owner` must be that user
-- (the signature stays so that callers keep working), anything else is refused. Only the two
-- application roles may call it.

-- Which of these deck requests were served to someone other than the caller? Lets the
-- outcome path reject another user's rec_request_id although RLS hides other users'
-- impressions. Errors: insufficient_privilege (42501) when `owner` is not the caller or no
-- caller is set.
create or replace function rec_requests_of_other_users(owner uuid, request_ids uuid[])
returns setof uuid
language plpgsql stable security definer
set search_path = public, pg_temp
as $$
declare
    caller uuid := app_current_user_id();
begin
    if caller is null or owner is distinct from caller then
        raise exception 'rec_requests_of_other_users answers only for the current user'
            using errcode = 'insufficient_privilege';
    end if;
    return query
        select distinct i.rec_request_id
        from rec_impressions as i
        where i.rec_request_id = any(request_ids) and i.user_id <> caller;
end
$$;

revoke execute on function rec_requests_of_other_users(uuid, uuid[]) from public;
grant execute on function rec_requests_of_other_users(uuid, uuid[])
    to recsys_authenticated, recsys_service;
