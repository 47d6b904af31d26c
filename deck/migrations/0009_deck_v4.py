from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("deck", "0008_deck_v3"),
    ]

    operations = [
        # The same decks through order-matching indexes, a per-genre popularity table and one
        # experiments read per deck (docs/performance.md).
        install_sql(SQL_DIR, "deck.v4"),
    ]
