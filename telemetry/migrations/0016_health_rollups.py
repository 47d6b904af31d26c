# A per-day rollup of what telemetry_health and the alerts judge (res17): the health view and
# rec_active_alerts_v1 read the clean rolled days from it and the rest raw
# (health_rollups.v1.sql).

from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0015_partition_events")]

    operations = [install_sql(SQL_DIR, "health_rollups.v1")]
