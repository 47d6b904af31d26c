from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("deck", "0003_user_segments"),
    ]

    operations = [
        # Acted items leave each candidate source before its pool limit (docs/deck.md).
        install_sql(SQL_DIR, "deck.v2"),
    ]
