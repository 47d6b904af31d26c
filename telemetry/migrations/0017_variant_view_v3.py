# rec_variant_daily_metrics_v1 reads its raw days in two disjoint index-conditioned branches
# with the watermark computed once (views.v3.sql): v2 called the watermark function per row.

from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0016_health_rollups")]

    operations = [install_sql(SQL_DIR, "views.v3")]
