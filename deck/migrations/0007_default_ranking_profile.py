from django.db import migrations

# The global default profile, holding the built-in knobs (rec_default_ranking_knobs(), equal
# to recsys_experiments/lib/knobs.py DEFAULT_KNOBS): editing it in the admin changes every
# deck without a migration. Its version 1 enters the history through the trigger.


class Migration(migrations.Migration):
    dependencies = [
        ("deck", "0006_ranking_profiles"),
    ]

    operations = [
        migrations.RunSQL(
            sql="""
                insert into rec_ranking_profiles (name, version, knobs, bindings, is_default)
                select 'default', 1, rec_default_ranking_knobs(), '[]'::jsonb, true
                where not exists (select 1 from rec_ranking_profiles where is_default);
            """,
            reverse_sql="""
                delete from rec_ranking_profile_versions
                where profile_id in (select id from rec_ranking_profiles
                                     where name = 'default' and is_default);
                delete from rec_ranking_profile_bindings
                where profile_id in (select id from rec_ranking_profiles
                                     where name = 'default' and is_default);
                delete from rec_ranking_profiles where name = 'default' and is_default;
            """,
        ),
    ]
