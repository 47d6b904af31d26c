-- The deleted DRF tokens cannot come back; their users log in again.
do $$
declare
    user_data_table text;
begin
    foreach user_data_table in array array[
        'knox_authtoken', 'axes_accessattempt', 'axes_accessattemptexpiration',
        'axes_accesslog', 'axes_accessfailurelog'
    ] loop
        execute format(
            'drop policy if exists %I on %I', user_data_table || '_service_all', user_data_table
        );
        execute format('alter table %I disable row level security', user_data_table);
    end loop;
end
$$;
