from django.db import migrations

# The database twin of the bounds in lib/experiment_rules.py: whatever writes the table, an
# experiment keeps a description the admin can show, a bounded number of variants and
# guardrails, and a namespace name and app versions the assignment SQL can read. Written in
# SQL like the variants array check of 0002 (jsonb_array_length fails on a non-array, hence
# the CASE; a NULL result passes here and the array check refuses the row).
BOUNDS = {
    "rec_experiments_description_length_check": "char_length(description) <= 2000",
    "rec_experiments_variants_count_check": (
        "case when jsonb_typeof(variants) = 'array' "
        "then jsonb_array_length(variants) between 2 and 20 end"
    ),
    "rec_experiments_guardrails_count_check": (
        "jsonb_typeof(guardrails) = 'array' "
        "and case when jsonb_typeof(guardrails) = 'array' "
        "then jsonb_array_length(guardrails) <= 20 end"
    ),
    "rec_experiments_namespace_name_check": (
        "namespace_name is null or namespace_name ~ '^[a-z0-9][a-z0-9_]{0,62}$'"
    ),
    "rec_experiments_min_app_version_check": (
        r"min_app_version is null or min_app_version ~ '^[0-9]{1,9}(\.[0-9]{1,9}){0,3}$'"
    ),
    "rec_experiments_max_app_version_check": (
        r"max_app_version is null or max_app_version ~ '^[0-9]{1,9}(\.[0-9]{1,9}){0,3}$'"
    ),
}


class Migration(migrations.Migration):
    dependencies = [
        ("recsys_experiments", "0006_assignment_v3"),
    ]

    operations = [
        migrations.RunSQL(
            sql="".join(
                f"alter table rec_experiments add constraint {name} check ({condition});\n"
                for name, condition in BOUNDS.items()
            ),
            reverse_sql="".join(
                f"alter table rec_experiments drop constraint {name};\n"
                for name in reversed(BOUNDS)
            ),
        ),
    ]
