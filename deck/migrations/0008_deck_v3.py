from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("deck", "0007_default_ranking_profile"),
    ]

    operations = [
        # Knobs from ranking profiles, provenance on every impression (docs/deck.md).
        install_sql(SQL_DIR, "deck.v3"),
    ]
