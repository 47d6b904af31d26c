drop function if exists rec_requests_of_other_users(uuid, uuid[]);
drop view if exists rec_active_alerts_v1;
drop view if exists rec_alerts_daily_metrics_v1;
drop view if exists rec_health_daily_metrics_v1;
drop view if exists rec_genre_daily_metrics_v1;
drop view if exists rec_position_daily_metrics_v1;
drop view if exists rec_source_daily_metrics_v1;
drop view if exists rec_variant_daily_metrics_v1;
drop view if exists rec_impression_outcomes_v1;
