-- API token authentication and the request's database role in one round trip
-- (recsys_experiments/accounts/authentication.py; docs/performance.md, "Request path (http18)").
--
-- Knox's semantics, as ApiTokenAuthentication had them through knox's TokenAuthentication:
-- the token is found by its lookup prefix and SHA-512 digest (computed by the caller); one
-- that expired before p_now (the application's clock, as knox compares) is deleted and not
-- returned; a live one is extended to p_now + p_ttl (capped at created + p_max_ttl when that
-- is set), written only when that moves it by more than p_min_refresh (knox's AUTO_REFRESH
-- and MIN_REFRESH_INTERVAL). The user comes back as a row of accounts_user (to_jsonb), active
-- or not: the caller refuses an inactive one.
--
-- Only for an active user, and only when p_role is given, the rest of the transaction then
-- runs as p_role with app.user_id = that user (set_config(..., true), i.e. SET LOCAL, as
-- recsys_experiments/db_roles.py does); previous_role / previous_user_id are the pair in force
-- before, for a caller whose transaction outlives the request. The lookup and the refresh run
-- first, as the calling (login) role: the end-user roles have no rights on knox_authtoken.
-- Invoker's rights: set_config('role') is refused inside a SECURITY DEFINER function.
create or replace function rec_token_authenticate(
    p_token_key text,
    p_digest text,
    p_now timestamptz,
    p_ttl interval,
    p_max_ttl interval,
    p_min_refresh interval,
    p_role text
) returns table (
    user_row jsonb,
    token_created timestamptz,
    token_expiry timestamptz,
    previous_role text,
    previous_user_id text
)
language plpgsql
set search_path = pg_catalog, public
as $$
declare
    token knox_authtoken;
    new_expiry timestamptz;
begin
    select t.* into token
    from knox_authtoken as t
    where t.digest = p_digest and t.token_key = p_token_key;
    if not found then
        return;
    end if;
    if token.expiry is not null and token.expiry < p_now then
        delete from knox_authtoken as t where t.digest = token.digest;
        return;
    end if;
    if token.expiry is not null and p_ttl is not null then
        new_expiry := p_now + p_ttl;
        if p_max_ttl is not null and new_expiry > token.created + p_max_ttl then
            new_expiry := token.created + p_max_ttl;
        end if;
        if new_expiry - token.expiry > p_min_refresh then
            update knox_authtoken as t set expiry = new_expiry where t.digest = token.digest;
            token.expiry := new_expiry;
        end if;
    end if;
    select to_jsonb(u) into user_row from accounts_user as u where u.id = token.user_id;
    if user_row is null then
        return;  -- deleted meanwhile (the foreign key cascades to its tokens): no token
    end if;
    token_created := token.created;
    token_expiry := token.expiry;
    previous_role := current_setting('role');
    previous_user_id := coalesce(current_setting('app.user_id', true), '');
    if p_role is not null and (user_row ->> 'is_active')::boolean then
        perform set_config('role', p_role, true), set_config('app.user_id', token.user_id::text, true);
    end if;
    return next;
end
$$;

revoke all on function rec_token_authenticate(
    text, text, timestamptz, interval, interval, interval, text
) from public;
