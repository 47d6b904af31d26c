from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("recsys_experiments", "0004_experiment_guardrails"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("knox", "0009_extend_authtoken_field"),
        ("axes", "0010_accessattemptexpiration"),
    ]

    operations = [
        install_sql(SQL_DIR, "cache.v1"),
        install_sql(SQL_DIR, "tokens.v1"),
    ]
