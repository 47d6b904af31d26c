-- Plain tables again (partitions.v1.sql): every row of each parent, the original primary key
-- and (user_id, event_id) unique constraints; dependent views saved and recreated around it.
-- Detached partitions (manage.py partitions detach without --archive-dir) are left alone.
select rec_views_save(array['rec_impressions', 'rec_outcomes', 'rec_conversions',
                            'rec_exposures']);
select rec_partition_revert('rec_exposures');
select rec_partition_revert('rec_conversions');
select rec_partition_revert('rec_outcomes');
select rec_partition_revert('rec_impressions');
select rec_views_restore();

drop function rec_partition_revert(text);
drop function rec_partition_convert(text, text, integer, integer);
drop function rec_rename_identity(regclass);
drop function rec_copy_identity(regclass, regclass);
drop function rec_copy_columns(regclass);
drop function rec_table_security_statements(regclass, text);
drop function rec_views_restore();
drop function rec_views_save(text[]);
drop function rec_partition_ensure(text, date);
drop function rec_partition_name_indexes(text);
drop function rec_partition_secure(text, text);
drop function rec_event_key_claim();
drop table rec_event_keys;
drop table rec_partitioned_tables;
