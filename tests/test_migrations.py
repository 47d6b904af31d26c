import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

PROJECT_APPS = ["accounts", "recsys_experiments", "deck", "telemetry"]


def applied_project_migrations() -> set[tuple[str, str]]:
    executor = MigrationExecutor(connection)
    return {key for key in executor.loader.applied_migrations if key[0] in PROJECT_APPS}


@pytest.mark.django_db(transaction=True)
def test_every_app_migrates_to_zero_and_back():
    before = applied_project_migrations()
    assert before, "the test database should be migrated"

    for app in reversed(PROJECT_APPS):
        call_command("migrate", app, "zero", verbosity=0)
    assert applied_project_migrations() == set()

    call_command("migrate", verbosity=0)
    assert applied_project_migrations() == before
