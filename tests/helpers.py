"""Small helpers shared by the test modules."""

import io
import os
import re
from typing import NoReturn

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse

from recsys_experiments.models import Assignment


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def skip_outside_ci(reason: str) -> NoReturn:
    """Skip a test whose tool or server is missing here, except under CI=true, where it fails:
    .ci/run installs everything, so CI must never pass by not running a test."""
    if running_in_ci():
        pytest.fail(f"{reason}; CI=true, so this test may not skip", pytrace=False)
    pytest.skip(reason)


# The experiment representation (SPEC.md), plus the guardrails the results report evaluates
# and the inference mode of its results.
REPRESENTATION_FIELDS = {
    "key",
    "description",
    "status",
    "variants",
    "salt",
    "traffic",
    "namespace",
    "targeting",
    "started_at",
    "ended_at",
    "created_at",
    "updated_at",
    "guardrails",
    "sequential_testing",
}


def assign(key, user):
    """rec_assign_variant for a user (the sticky, hashed or stored variant)."""
    with connection.cursor() as cursor:
        cursor.execute("select rec_assign_variant(%s, %s)", [key, user.pk])
        return cursor.fetchone()[0]


def stored(experiment, user):
    """(variant, assignment_mode) of the user's stored assignment, or None."""
    return (
        Assignment.objects.filter(experiment=experiment, user=user)
        .values_list("variant", "assignment_mode")
        .first()
    )


def other_variant(variant):
    return "control" if variant == "treatment" else "treatment"


def command_output(command: str, *args) -> str:
    stdout = io.StringIO()
    call_command(command, *args, stdout=stdout)
    return stdout.getvalue()


def command_fails(command: str, *args) -> str:
    """Runs the command expecting a CommandError; returns its one-line message."""
    with pytest.raises(CommandError) as error:
        command_output(command, *args)
    message = str(error.value)
    assert message
    assert "\n" not in message
    return message


def api_error_fields(response) -> dict:
    """{field: [reasons]} of an API error response, which must have the API's one error shape."""
    body = response.json()
    assert set(body) == {"status", "code", "detail", "errors"}, body
    assert body["status"] == response.status_code, body
    return body["errors"]


def admin_page_url(name: str, experiment) -> str:
    """The URL of one of an experiment's admin pages, by URL name."""
    return reverse(f"admin:{name}", args=[experiment.pk])


def history_seq_scans(plan: str, table: str, since: str = "current_date - 7") -> list[str]:
    """The relations of `table` that an EXPLAIN text plan reads sequentially although they
    hold history before `since` (an SQL date expression) only: the table itself when it is
    not partitioned, its default partition when it holds rows, a month partition ending on or
    before `since`. A month the window overlaps (at most a month of rows, whatever the
    history) and an empty future month are no finding."""
    names = sorted(
        set(re.findall(rf"Seq Scan on ({re.escape(table)}(?:_p\d{{6}}|_default)?)\b", plan))
    )
    found = []
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(
                f"""
                select case
                    when c.relkind = 'r' and not c.relispartition then true
                    when pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
                        then exists (select 1 from "{name}")
                    else substring(pg_get_expr(c.relpartbound, c.oid)
                                   from 'TO [(]''([^'']*)''[)]')::timestamptz
                         <= ({since})::timestamptz
                end
                from pg_class as c where c.relname = %s
                """,
                [name],
            )
            if cursor.fetchone()[0]:
                found.append(name)
    return found
