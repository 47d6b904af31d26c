-- Restores v1 of rec_requests_of_other_users (views.v1.sql) and its default grant.
revoke execute on function rec_requests_of_other_users(uuid, uuid[])
    from recsys_authenticated, recsys_service;
grant execute on function rec_requests_of_other_users(uuid, uuid[]) to public;

-- Which of these deck requests were served to someone other than `owner`? Lets the outcome
-- path reject another user's rec_request_id although RLS hides other users' impressions.
create or replace function rec_requests_of_other_users(owner uuid, request_ids uuid[])
returns setof uuid
language sql stable security definer
set search_path = public, pg_temp
as $$
    select distinct i.rec_request_id
    from rec_impressions as i
    where i.rec_request_id = any(request_ids) and i.user_id <> owner
$$;
