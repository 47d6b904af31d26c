from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("deck", "0009_deck_v4"),
    ]

    operations = [
        # The same decks; a user with many outcomes probes rec_outcomes per walked title
        # instead of reading all their outcomes (docs/performance.md, "Heavy user (deck v5)").
        install_sql(SQL_DIR, "deck.v5"),
    ]
