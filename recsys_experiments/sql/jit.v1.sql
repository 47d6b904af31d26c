-- jit off for the application's roles (docs/performance.md, "Deck and web tier (perf17)"):
-- every query the app runs is short or reads a bounded window, where LLVM compile time
-- (hundreds of ms on a 1M-row daily view) costs far more than it saves. Role defaults apply
-- when a session starts, so the one that counts is the login role's: the role running the
-- migrations, which is the app's own role (the NOLOGIN roles it switches to with SET LOCAL
-- get it too, for a deployment that logs in as them). A deployment whose app logs in as
-- another role runs `alter role <app role> set jit = off` itself.
alter role recsys_authenticated set jit = off;
alter role recsys_service set jit = off;
do $$
begin
    execute format('alter role %I set jit = off', current_user);
end
$$;
