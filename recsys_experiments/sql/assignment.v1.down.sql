drop function if exists rec_set_user_variant(text, uuid, text, uuid);
drop function if exists rec_assign_variant(text, uuid);
drop function if exists rec_assign_variant(text, uuid, text, text);
drop function if exists rec_active_experiments();
