from pathlib import Path

from django.db import migrations

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("recsys_experiments", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            sql="""
                alter table rec_experiments
                    add constraint rec_experiments_variants_array_check
                    check (jsonb_typeof(variants) = 'array');
                alter table rec_user_experiment_assignments
                    add constraint rec_assignments_experiment_fk
                    foreign key (experiment_id) references rec_experiments (id)
                    on delete cascade;
                alter table rec_user_experiment_assignments
                    add constraint rec_assignments_user_fk
                    foreign key (user_id) references accounts_user (id)
                    on delete cascade;
            """,
            reverse_sql="""
                alter table rec_user_experiment_assignments
                    drop constraint rec_assignments_user_fk;
                alter table rec_user_experiment_assignments
                    drop constraint rec_assignments_experiment_fk;
                alter table rec_experiments
                    drop constraint rec_experiments_variants_array_check;
            """,
        ),
        install_sql(SQL_DIR, "updated_at.v1"),
        install_sql(SQL_DIR, "hashing.v1"),
        install_sql(SQL_DIR, "assignment.v1"),
    ]
