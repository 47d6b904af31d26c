-- Back to the server's jit setting for the application's roles.
alter role recsys_authenticated reset jit;
alter role recsys_service reset jit;
do $$
begin
    execute format('alter role %I reset jit', current_user);
end
$$;
