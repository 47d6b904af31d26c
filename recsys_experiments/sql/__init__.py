"""Versioned SQL installed by migrations.

Never edit a file that a merged migration loads: a change is a new `<name>.v2.sql` (and its
`.down.sql`) loaded by a new migration. This helper is deliberately tiny and imports nothing
from the apps, so old migrations keep working whatever the code becomes.
"""

from pathlib import Path

from django.db import migrations


def install_sql(directory: Path, name: str) -> migrations.RunSQL:
    """RunSQL for `<directory>/<name>.sql`, reversed by `<name>.down.sql`."""
    return migrations.RunSQL(
        sql=(directory / f"{name}.sql").read_text(),
        reverse_sql=(directory / f"{name}.down.sql").read_text(),
    )
