from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("deck", "0001_initial"),
        ("telemetry", "0001_initial"),
        ("recsys_experiments", "0002_sql_engine"),
    ]

    operations = [
        migrations.RunSQL(
            sql="""
                alter table rec_outcomes add constraint rec_outcomes_rating_step_check
                    check (outcome_type <> 'rating' or value * 2 = trunc(value * 2));
            """,
            reverse_sql="alter table rec_outcomes drop constraint rec_outcomes_rating_step_check;",
        ),
        install_sql(SQL_DIR, "deck.v1"),
    ]
