from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("recsys_experiments", "0002_sql_engine"),
        ("deck", "0002_deck_function"),
        ("telemetry", "0003_alert_thresholds"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        install_sql(SQL_DIR, "security.v1"),
        install_sql(SQL_DIR, "assignment.v2"),
    ]
