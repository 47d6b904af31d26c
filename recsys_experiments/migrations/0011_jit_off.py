from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("recsys_experiments", "0010_lifecycle_schedule_delete"),
    ]

    operations = [
        # jit off for the app's roles: compile time, not speed, on its queries
        # (docs/performance.md).
        install_sql(SQL_DIR, "jit.v1"),
    ]
