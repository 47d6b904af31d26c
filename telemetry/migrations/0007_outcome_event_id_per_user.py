from django.db import migrations, models

# event_id is unique per user, not globally: with a global key another user's ids could be
# probed (a "duplicate" answer) and could block a user's own events. The new constraint takes
# over the index 0006 built concurrently; the old key and its LIKE index go. No view or policy
# depends on either (they read columns, which are unchanged). Going back fails if two users
# have since sent the same event_id.


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0006_outcome_user_event_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql="""
                        alter table rec_outcomes add constraint rec_outcomes_user_event_uniq
                            unique using index rec_outcomes_user_event_uniq;
                        alter table rec_outcomes drop constraint rec_outcomes_event_id_key;
                        drop index if exists rec_outcomes_event_id_b537d26b_like;
                    """,
                    reverse_sql="""
                        alter table rec_outcomes add constraint rec_outcomes_event_id_key
                            unique (event_id);
                        create index rec_outcomes_event_id_b537d26b_like
                            on rec_outcomes (event_id text_pattern_ops);
                        alter table rec_outcomes drop constraint rec_outcomes_user_event_uniq;
                        create unique index rec_outcomes_user_event_uniq
                            on rec_outcomes (user_id, event_id);
                    """,
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="outcome",
                    name="event_id",
                    field=models.TextField(),
                ),
                migrations.AddConstraint(
                    model_name="outcome",
                    constraint=models.UniqueConstraint(
                        fields=("user", "event_id"), name="rec_outcomes_user_event_uniq"
                    ),
                ),
            ],
        ),
    ]
