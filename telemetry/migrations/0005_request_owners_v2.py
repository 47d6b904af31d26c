from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0004_daily_views"),
    ]

    operations = [
        # rec_requests_of_other_users answers for app_current_user_id() only, not PUBLIC.
        install_sql(SQL_DIR, "request_owners.v2"),
    ]
