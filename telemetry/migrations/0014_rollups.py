# Daily rollups behind the daily views, the results and the alerts (issue 17 §1): the rollup
# tables, rec_rollup_day()/rec_rollup_through(), the triggers that reopen a day on a late
# event (rollups.v1.sql), then the two views that read them (views.v2.sql).

from pathlib import Path

from django.conf import settings
from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0013_conversion_metrics"),
        ("recsys_experiments", "0010_lifecycle_schedule_delete"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        install_sql(SQL_DIR, "rollups.v1"),
        install_sql(SQL_DIR, "views.v2"),
    ]
