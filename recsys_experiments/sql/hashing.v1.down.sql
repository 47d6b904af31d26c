drop function if exists rec_pick_variant(text, text, jsonb, double precision, text, double precision, double precision, text, text, text, text, text);
drop function if exists rec_choose_variation(double precision, double precision[], double precision[]);
drop function if exists rec_bucket_ranges(integer, double precision, double precision[]);
drop function if exists rec_equal_weights(integer);
drop function if exists rec_is_targeted(text, text, text, text, text);
drop function if exists rec_app_version_key(text);
drop function if exists rec_in_namespace(text, text, double precision, double precision);
drop function if exists rec_hash_point(text, text, integer);
drop function if exists rec_fnv1a32(text);
