# Phases (rec_experiment_phases) and the phase of each assignment; rec_assign_variant v4
# records it. Active and ended experiments get their phase 1 from started_at (to ended_at),
# and their assignments are counted in it.

from pathlib import Path

import django.db.models.deletion
from django.db import migrations, models

from recsys_experiments.sql import install_sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"

BACKFILL = """
insert into rec_experiment_phases
    (experiment_id, number, started_at, ended_at, weights, traffic, targeting, namespace, salt)
select e.id, 1, coalesce(e.started_at, e.created_at), e.ended_at,
       (select jsonb_agg(jsonb_build_object('name', v.value -> 'name', 'weight', v.value -> 'weight')
                         order by v.ordinality)
        from jsonb_array_elements(e.variants) with ordinality as v),
       e.traffic,
       jsonb_strip_nulls(jsonb_build_object('platform', e.platform,
           'min_app_version', e.min_app_version, 'max_app_version', e.max_app_version)),
       case when e.namespace_name is null then null
            else jsonb_build_object('name', e.namespace_name, 'start', e.namespace_start,
                                    'end', e.namespace_end) end,
       e.salt
from rec_experiments as e
where e.status in ('active', 'ended');

update rec_user_experiment_assignments as a set phase = 1
from rec_experiments as e
where e.id = a.experiment_id and e.status in ('active', 'ended')
  and a.assignment_mode = 'auto';
"""


class Migration(migrations.Migration):
    dependencies = [
        ("recsys_experiments", "0007_experiment_bounds"),
    ]

    operations = [
        migrations.AddField(
            model_name="assignment",
            name="phase",
            field=models.IntegerField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="ExperimentPhase",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("number", models.IntegerField()),
                ("started_at", models.DateTimeField()),
                ("ended_at", models.DateTimeField(blank=True, null=True)),
                ("weights", models.JSONField()),
                ("traffic", models.FloatField()),
                ("targeting", models.JSONField(default=dict)),
                ("namespace", models.JSONField(blank=True, null=True)),
                ("salt", models.TextField()),
                (
                    "experiment",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="phases",
                        to="recsys_experiments.experiment",
                    ),
                ),
            ],
            options={
                "db_table": "rec_experiment_phases",
                "ordering": ("experiment", "number"),
                "constraints": [
                    models.UniqueConstraint(
                        fields=("experiment", "number"), name="rec_experiment_phases_number_unique"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("number__gte", 1)),
                        name="rec_experiment_phases_number_check",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("ended_at__isnull", True),
                            ("ended_at__gte", models.F("started_at")),
                            _connector="OR",
                        ),
                        name="rec_experiment_phases_order_check",
                    ),
                ],
            },
        ),
        install_sql(SQL_DIR, "phases.v1"),
        # Reversed by dropping the table and the column.
        migrations.RunSQL(sql=BACKFILL, reverse_sql=migrations.RunSQL.noop),
        install_sql(SQL_DIR, "assignment.v4"),
    ]
