from django.db import migrations

# Accounts loaded by a fixture before accounts.0002 carry no created_by_fixture mark. Mark
# those a fixture evidently created: a segment row from it, no usable password (the loader
# sets none), never logged in, not staff. Accounts a fixture merely took over (an admin, a
# real user) stay unmarked, so load_fixture now refuses to touch them. The reverse keeps the
# marks: they are true either way, and accounts.0002's reverse drops the column.


class Migration(migrations.Migration):
    dependencies = [
        ("deck", "0004_deck_v2"),
        ("accounts", "0002_user_created_by_fixture"),
    ]

    operations = [
        migrations.RunSQL(
            sql="""
                update accounts_user as u
                set created_by_fixture = s.fixture
                from recsys_user_segments as s
                where s.user_id = u.id
                  and u.created_by_fixture is null
                  and u.password like '!%'
                  and u.last_login is null
                  and not u.is_staff
                  and not u.is_superuser;
            """,
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
