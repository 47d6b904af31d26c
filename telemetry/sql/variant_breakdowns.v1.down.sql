drop view if exists rec_variant_genre_daily_metrics_v1;
drop view if exists rec_variant_position_daily_metrics_v1;
drop view if exists rec_variant_source_daily_metrics_v1;
