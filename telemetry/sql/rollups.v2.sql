-- rec_rollup_through() v2 (res18): after rolling at least one day it ANALYZEs the rollup
-- tables it wrote. A catch-up rolls a whole day's rows (hundreds of thousands of per-user
-- rows for a busy day) that the planner's statistics have not seen until autovacuum gets
-- there; a read right after it (an on-demand refresh is followed by the read in the same
-- request) was planned on the old statistics, e.g. a handful of rows for the new days.
-- Otherwise the same function as rollups.v1.sql.

create or replace function rec_rollup_through(through date) returns setof date
language plpgsql volatile security definer
set search_path = public, pg_temp
as $$
declare
    last_day date := least(through, rec_rollup_today() - 1);
    next_day date;
    dirty_day date;
    rolled integer := 0;
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
        rolled := rolled + 1;
        return next dirty_day;
    end loop;
    next_day := coalesce(rec_rollup_watermark() + 1, rec_rollup_first_day());
    while next_day is not null and next_day <= last_day loop
        perform rec_rollup_day(next_day);
        rolled := rolled + 1;
        return next next_day;
        next_day := next_day + 1;
    end loop;
    if rolled > 0 then
        analyze rec_rollup_days, rec_daily_user_rollups, rec_daily_user_totals,
            rec_daily_conversion_rollups, rec_daily_ranking_rollups, rec_daily_health_rollups;
    end if;
end
$$;
