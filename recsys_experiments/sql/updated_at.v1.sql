-- Keeps rec_experiments.updated_at current whatever writes the row (ORM, SQL, admin).
create or replace function tg_set_updated_at() returns trigger
language plpgsql
set search_path = pg_catalog
as $$
begin
    -- statement time, like the column defaults, so an edit never predates its creation.
    new.updated_at := statement_timestamp();
    return new;
end
$$;

create trigger rec_experiments_set_updated_at
before update on rec_experiments
for each row execute function tg_set_updated_at();
