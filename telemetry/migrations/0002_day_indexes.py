from django.db import migrations

# Views filter on the UTC day of created_at; these expression indexes let such a filter
# read only those days. Built concurrently (a big table stays writable), so not atomic.
DAY_INDEXES = {
    "idx_rec_impressions_day": "rec_impressions",
    "idx_rec_outcomes_day": "rec_outcomes",
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("telemetry", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            sql=(
                f"create index concurrently if not exists {name} "
                f"on {table} (((created_at at time zone 'UTC')::date))"
            ),
            reverse_sql=f"drop index concurrently if exists {name}",
        )
        for name, table in DAY_INDEXES.items()
    ]
