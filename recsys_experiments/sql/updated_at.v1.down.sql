drop trigger if exists rec_experiments_set_updated_at on rec_experiments;
drop function if exists tg_set_updated_at();
