# rec_rollup_through() v2: ANALYZE the rollup tables after rolling days, so that a read right
# after a catch-up is planned on statistics that have seen the new days (rollups.v2.sql).

from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0017_variant_view_v3")]

    operations = [install_sql(SQL_DIR, "rollups.v2")]
