"""Monthly range partitioning of rec_impressions, rec_outcomes, rec_conversions and
rec_exposures (telemetry/sql/partitions.v1.sql, docs/scaling.md "Partitioning"). The model
state does not change: the tables keep their columns and names; the primary keys gain the
partition column and (user_id, event_id) stays unique through rec_event_keys."""

from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0014_rollups"),
        # The policies copied onto every partition name the security roles.
        ("recsys_experiments", "0003_security"),
    ]

    operations = [install_sql(SQL_DIR, "partitions.v1")]
