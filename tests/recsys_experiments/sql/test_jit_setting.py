"""jit is off for the application's roles (recsys_experiments/sql/jit.v1.sql): the login role
the app connects (and migrates) as, and the two roles it switches to."""

from django.db import connection


def role_settings(role: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            select coalesce(array_agg(c), '{}')
            from pg_db_role_setting as s
            join pg_roles as r on r.oid = s.setrole
            cross join unnest(s.setconfig) as c
            where r.rolname = %s and s.setdatabase = 0
            """,
            [role],
        )
        return cursor.fetchone()[0]


def test_the_application_roles_start_their_sessions_with_jit_off(db):
    with connection.cursor() as cursor:
        cursor.execute("select current_user")
        login_role = cursor.fetchone()[0]

    for role in (login_role, "recsys_authenticated", "recsys_service"):
        assert "jit=off" in role_settings(role), role
