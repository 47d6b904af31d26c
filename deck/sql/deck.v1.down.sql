drop function if exists media_swipe_deck_v1(uuid, integer, text, text);
drop function if exists rec_deck_experiments(uuid, text, text);
drop function if exists rec_default_ranking_knobs();
