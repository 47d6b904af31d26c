from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("recsys_experiments", "0011_jit_off"),
    ]

    operations = [
        # rec_assign_variant reads the experiment by key and id, not through two calls of
        # rec_active_experiments() (docs/performance.md, "Per-request Python (py17)").
        install_sql(SQL_DIR, "assignment.v5"),
    ]
