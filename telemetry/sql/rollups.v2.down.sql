-- Back to rollups.v1.sql's rec_rollup_through().

create or replace function rec_rollup_through(through date) returns setof date
language plpgsql volatile security definer
set search_path = public, pg_temp
as $$
declare
    last_day date := least(through, rec_rollup_today() - 1);
    next_day date;
    dirty_day date;
begin
    if last_day is null then
        return;
    end if;
    -- One rollup at a time (cron and an on-demand read may meet).
    perform pg_advisory_xact_lock(hashtext('rec_rollup'));
    for dirty_day in
        select r.day from rec_rollup_days as r where r.dirty and r.day <= last_day order by 1
    loop
        perform rec_rollup_day(dirty_day);
        return next dirty_day;
    end loop;
    next_day := coalesce(rec_rollup_watermark() + 1, rec_rollup_first_day());
    while next_day is not null and next_day <= last_day loop
        perform rec_rollup_day(next_day);
        return next next_day;
        next_day := next_day + 1;
    end loop;
end
$$;
