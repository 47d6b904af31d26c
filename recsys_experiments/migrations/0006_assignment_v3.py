from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("recsys_experiments", "0005_auth_tokens_and_cache"),
    ]

    operations = [
        # First assignments lock the experiment row FOR SHARE: no stale salt after a rotation.
        install_sql(SQL_DIR, "assignment.v3"),
    ]
