from django.db import migrations

# Its own migration (own transaction): deleting the rows and dropping the table in one
# transaction fails on the pending foreign-key trigger events.


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0008_metric_catalogue"),
    ]

    operations = [
        # The default catalogue (the list; there is no "skip" outcome type).
        migrations.RunSQL(
            sql="""
                insert into rec_metrics (key, name, kind, numerator, denominator, value, description)
                values
                ('like_rate', 'Likes per impression', 'ratio', 'like', 'impression', 'count',
                 'likes on the variant''s impressions / its impressions; delta method by user'),
                ('dislike_rate', 'Dislikes per impression', 'ratio', 'dislike', 'impression',
                 'count', 'dislikes / impressions; delta method by user'),
                ('detail_open_rate', 'Detail opens per impression', 'ratio', 'detail_open',
                 'impression', 'count', 'detail opens / impressions; delta method by user'),
                ('watchlist_rate', 'Watchlist adds per impression', 'ratio', 'watchlist',
                 'impression', 'count', 'watchlist adds / impressions; delta method by user'),
                ('likes_per_user', 'Likes per exposed user', 'mean', 'like', null, 'count',
                 'likes per exposed user (zero for users without one); Welch''s t-test'),
                ('mean_rating', 'Mean rating per rating user', 'mean', 'rating', null, 'mean',
                 'each rating user''s mean rating, averaged over users; Welch''s t-test'),
                ('users_with_like', 'Users with a like', 'proportion', 'like', null, 'count',
                 'share of exposed users with at least one like; two-proportion z-test');
            """,
            reverse_sql="delete from rec_metrics;",
        ),
    ]
