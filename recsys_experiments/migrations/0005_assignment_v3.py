from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("recsys_experiments", "0004_experiment_guardrails"),
    ]

    operations = [
        # First assignments lock the experiment row FOR SHARE: no stale salt after a rotation.
        install_sql(SQL_DIR, "assignment.v3"),
    ]
