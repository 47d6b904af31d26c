-- Django's database cache table, as `manage.py createcachetable` makes it: the API's
-- rate-limit counters, shared by every gunicorn worker. Keys hold hashes, never a login or
-- an address. The application's login role uses it on a connection of its own
-- (config/db_routers.py); no request role needs it.
create table if not exists django_cache (
    cache_key varchar(255) not null primary key,
    value text not null,
    expires timestamp with time zone not null
);
create index if not exists django_cache_expires on django_cache (expires);
revoke all on django_cache from recsys_service, recsys_authenticated;
