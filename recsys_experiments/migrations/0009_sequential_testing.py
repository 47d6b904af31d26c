from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("recsys_experiments", "0008_experiment_phases"),
    ]

    operations = [
        migrations.AddField(
            model_name="experiment",
            name="sequential_testing",
            field=models.BooleanField(db_default=True, default=True),
        ),
    ]
