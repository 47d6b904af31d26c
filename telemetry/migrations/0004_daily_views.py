from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0003_alert_thresholds"),
        # After the security migration, so its default privileges cover the views.
        ("recsys_experiments", "0003_security"),
    ]

    operations = [
        install_sql(SQL_DIR, "views.v1"),
    ]
