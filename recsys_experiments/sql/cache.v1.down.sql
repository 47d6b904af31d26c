drop table if exists django_cache;
