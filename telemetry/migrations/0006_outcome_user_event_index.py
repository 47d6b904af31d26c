from django.db import migrations

# The index behind the (user_id, event_id) uniqueness of outcomes (0007), built concurrently
# so that a big rec_outcomes stays writable; hence not atomic.


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("telemetry", "0005_request_owners_v2"),
    ]

    operations = [
        migrations.RunSQL(
            sql=(
                "create unique index concurrently if not exists rec_outcomes_user_event_uniq "
                "on rec_outcomes (user_id, event_id)"
            ),
            reverse_sql="drop index concurrently if exists rec_outcomes_user_event_uniq",
        ),
    ]
