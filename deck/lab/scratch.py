"""Scratch databases: simulations run in a database of their own, never in the live one.

    with scratch_database() as scratch:   # scratch.name: "lab_scratch_<hex>"
        ...                               # Django's default connection talks to it

`scratch_database` clones (`CREATE DATABASE ... TEMPLATE`) a freshly migrated, empty template
on the same PostgreSQL server. The template is built once and cached, named from a hash of
the migration graph and of the migration and SQL files on disk (`lab_template_<hash>`); a
template of another hash is stale and dropped. Building, dropping and cloning templates is
serialised by an advisory lock taken on a maintenance connection to the `postgres` database,
because CREATE DATABASE ... TEMPLATE fails while anyone else is connected to the template.

Inside the block the connection WRAPPERS of the aliases "default" and
settings.AUTOCOMMIT_DATABASE (the same database, config/db_routers.py) are swapped in
`django.db.connections` for new wrappers on the scratch database; the live wrappers are put
back afterwards, untouched. A caller's open transaction on the live database (a request, a
test) therefore simply waits. CREATE/DROP DATABASE need autocommit: they run on the separate
maintenance connection. The scratch database is dropped afterwards (`WITH (FORCE)`) unless
`keep=True`.

The database role needs CREATEDB (`ALTER ROLE <role> CREATEDB`); without it the block fails
with one line saying so.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.migrations.loader import MigrationLoader

from recsys_experiments.lib.errors import DomainError

TEMPLATE_PREFIX = "lab_template_"
BUILD_PREFIX = "lab_tplbuild_"
SCRATCH_PREFIX = "lab_scratch_"
# pg_advisory_lock key for building, dropping and cloning templates ("lab-scratch").
LOCK_KEY = 0x6C61_622D_7363_72
MAINTENANCE_DATABASE = "postgres"
INSUFFICIENT_PRIVILEGE = "42501"


class ScratchDatabaseError(DomainError):
    """The scratch database cannot be made (one line for the operator)."""


@dataclass
class ScratchDatabase:
    name: str
    keep: bool


def _aliases() -> tuple[str, ...]:
    return (DEFAULT_DB_ALIAS, settings.AUTOCOMMIT_DATABASE)


def _quote(name: str) -> str:
    return connections[DEFAULT_DB_ALIAS].ops.quote_name(name)


def schema_fingerprint() -> str:
    """sha256 of the migration graph (every node) and of every migration and SQL file of the
    project's apps: a template built from other files is stale."""
    digest = hashlib.sha256()
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    for app_label, name in sorted(graph.nodes):
        digest.update(f"node {app_label}.{name}\n".encode())
    root = Path(settings.BASE_DIR).resolve()
    for config in sorted(apps.get_app_configs(), key=lambda c: c.label):
        app_dir = Path(config.path).resolve()
        if root not in app_dir.parents:
            continue
        files = sorted(
            [*app_dir.glob("migrations/*.py"), *app_dir.glob("sql/*.sql")],
            key=lambda p: p.as_posix(),
        )
        for path in files:
            digest.update(f"file {path.relative_to(root).as_posix()}\n".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _wrapper_for(alias: str, name: str, *, live=None):
    """A new, unconnected wrapper like the live one of `alias`, on database `name`."""
    if live is None:
        live = connections[alias]
    settings_dict = copy.deepcopy(live.settings_dict)
    settings_dict["NAME"] = name
    return live.__class__(settings_dict, alias)


@contextmanager
def _maintenance() -> Iterator:
    """An autocommit cursor on the maintenance database (`postgres`; the live database when
    the role may not connect there), on a connection of its own (Django's "no database"
    alias, as its own test-database creation uses)."""
    live = connections[DEFAULT_DB_ALIAS]
    wrapper = _wrapper_for(NO_DB_ALIAS, MAINTENANCE_DATABASE, live=live)
    try:
        wrapper.ensure_connection()
    except DatabaseError:
        wrapper = _wrapper_for(NO_DB_ALIAS, live.settings_dict["NAME"], live=live)
    try:
        with wrapper.cursor() as cursor:
            yield cursor
    finally:
        wrapper.close()


@contextmanager
def _locked(cursor) -> Iterator[None]:
    cursor.execute("select pg_advisory_lock(%s)", [LOCK_KEY])
    try:
        yield
    finally:
        cursor.execute("select pg_advisory_unlock(%s)", [LOCK_KEY])


def _create(cursor, name: str, *, template: str | None = None) -> None:
    sql = f"create database {_quote(name)}"
    if template:
        sql += f" template {_quote(template)}"
    try:
        cursor.execute(sql)
    except DatabaseError as error:
        code = getattr(getattr(error, "__cause__", None), "sqlstate", None)
        if code == INSUFFICIENT_PRIVILEGE or "permission denied" in str(error):
            role = connections[DEFAULT_DB_ALIAS].settings_dict.get("USER") or "the database role"
            raise ScratchDatabaseError(
                f"cannot create a scratch database: {role} lacks CREATEDB "
                f"(ALTER ROLE {role} CREATEDB), see docs/recsys-experiments.md"
            ) from None
        raise ScratchDatabaseError(f"cannot create database {name}: {error}".strip()) from None


def _drop(cursor, name: str) -> None:
    cursor.execute(f"drop database if exists {_quote(name)} with (force)")


def _databases(cursor, prefix: str) -> list[str]:
    cursor.execute(
        "select datname from pg_database where starts_with(datname, %s) order by datname",
        [prefix],
    )
    return [row[0] for row in cursor.fetchall()]


@contextmanager
def using_database(name: str) -> Iterator[None]:
    """Inside the block, the default and autocommit aliases talk to database `name`: their
    wrappers are swapped in `connections`, and the live wrappers (and any transaction open on
    them) are put back untouched afterwards."""
    saved = {alias: connections[alias] for alias in _aliases()}
    fresh = {alias: _wrapper_for(alias, name, live=saved[alias]) for alias in saved}
    # ContentType ids differ between databases; the manager caches them per alias.
    ContentType.objects.clear_cache()
    for alias, wrapper in fresh.items():
        connections[alias] = wrapper
    try:
        yield
    finally:
        for alias, wrapper in fresh.items():
            wrapper.close()
            connections[alias] = saved[alias]
        ContentType.objects.clear_cache()


def _build_template(cursor, name: str) -> None:
    """Migrate an empty database into template `name` (under the lock)."""
    building = BUILD_PREFIX + name.removeprefix(TEMPLATE_PREFIX)
    _drop(cursor, building)
    _create(cursor, building)
    try:
        with using_database(building):
            call_command("migrate", interactive=False, verbosity=0)
    except BaseException:
        _drop(cursor, building)
        raise
    cursor.execute(f"alter database {_quote(building)} rename to {_quote(name)}")


def template_ensure(cursor) -> str:
    """The current template's name, built when missing; stale templates are dropped. Call
    with the advisory lock held."""
    name = TEMPLATE_PREFIX + schema_fingerprint()[:24]
    for stale in _databases(cursor, TEMPLATE_PREFIX) + _databases(cursor, BUILD_PREFIX):
        if stale != name:
            _drop(cursor, stale)
    if name not in _databases(cursor, TEMPLATE_PREFIX):
        _build_template(cursor, name)
    return name


@contextmanager
def scratch_database(*, keep: bool = False) -> Iterator[ScratchDatabase]:
    """A freshly migrated, empty database for the block (see the module docstring); dropped
    afterwards unless `keep`."""
    scratch = ScratchDatabase(name=SCRATCH_PREFIX + secrets.token_hex(6), keep=keep)
    with _maintenance() as cursor:
        with _locked(cursor):
            template = template_ensure(cursor)
            _create(cursor, scratch.name, template=template)
        try:
            with using_database(scratch.name):
                yield scratch
        finally:
            if not keep:
                _drop(cursor, scratch.name)


def scratch_drop(name: str) -> None:
    """Drop a scratch database kept with keep=True."""
    if not name.startswith(SCRATCH_PREFIX):
        raise ScratchDatabaseError(f"{name} is not a scratch database")
    with _maintenance() as cursor:
        _drop(cursor, name)
