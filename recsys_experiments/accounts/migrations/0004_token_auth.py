from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_anonymous_users"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [
        # The API token lookup, knox's refresh and the request's role in one statement
        # (docs/performance.md, "Request path (http18)").
        install_sql(SQL_DIR, "token_auth.v1"),
    ]
