-- Keeps rec_experiments.updated_at current whatever writes the row (ORM, SQL, admin).
create or replace function tg_set_updated_at() returns trigger
language plpgsql
set search_path = pg_catalog
as $$
begin
    new.updated_at := now();
    return new;
end
$$;

create trigger rec_experiments_set_updated_at
before update on rec_experiments
for each row execute function tg_set_updated_at();
