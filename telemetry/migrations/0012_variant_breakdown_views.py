from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0011_exposures"),
    ]

    operations = [
        install_sql(SQL_DIR, "variant_breakdowns.v1"),
    ]
