do $$
declare
    event_table text;
begin
    foreach event_table in array array[
        'rec_impressions', 'rec_outcomes', 'rec_conversions', 'rec_exposures'
    ] loop
        execute format('drop trigger if exists %I on %I', event_table || '_rollup_insert', event_table);
        execute format('drop trigger if exists %I on %I', event_table || '_rollup_update', event_table);
        execute format('drop trigger if exists %I on %I', event_table || '_rollup_delete', event_table);
    end loop;
end
$$;
drop function if exists rec_rollup_occurred_changed();
drop function if exists rec_rollup_outcomes_changed();
drop function if exists rec_rollup_impressions_changed();
drop function if exists rec_rollup_forget_deleted_users(uuid[]);
drop function if exists rec_rollup_mark_dirty(date[]);
drop function if exists rec_rollup_through(date);
drop function if exists rec_rollup_first_day();
drop function if exists rec_rollup_day(date);
drop function if exists rec_rollup_watermark();
drop function if exists rec_rollup_today();
drop table if exists rec_daily_ranking_rollups;
drop table if exists rec_daily_conversion_rollups;
drop table if exists rec_daily_user_totals;
drop table if exists rec_daily_user_rollups;
drop table if exists rec_rollup_days;
