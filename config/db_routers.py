"""Sends the security counters to a connection of their own, and a `reading()` block's reads
to the read replica.

settings.DATABASES[AUTOCOMMIT_DATABASE] is the same database as "default", in autocommit: the
rate-limit counters (Django's database cache) and django-axes' login failures are committed
at once, even when the request that counted them is rolled back (a failed login answers 400,
which rolls the request's transaction back). Every other model stays on "default", and
migrations run there as usual.

settings.DATABASES[REPLICA_DATABASE] (only when DATABASE_REPLICA_URL is set) is a read-only
standby: ORM reads go there only inside recsys_experiments.db.reading() (results, reports, the
admin results pages), and no write, migration or relation ever does.
"""

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

from recsys_experiments.db import reading_block

# "django_cache" is the app label of the model Django's DatabaseCache builds for its table.
AUTOCOMMIT_APPS = {"django_cache", "axes"}


class AutocommitRouter:
    def db_for_read(self, model, **hints):
        if model._meta.app_label in AUTOCOMMIT_APPS:
            return settings.AUTOCOMMIT_DATABASE
        return None

    db_for_write = db_for_read


class ReplicaRouter:
    """After AutocommitRouter (the security counters never read from the replica)."""

    def db_for_read(self, model, **hints):
        return reading_block.get()

    def db_for_write(self, model, **hints):
        # An object read from the replica is saved on the primary (Django would otherwise
        # write where the instance came from).
        instance = hints.get("instance")
        if instance is not None and instance._state.db == settings.REPLICA_DATABASE:
            return DEFAULT_DB_ALIAS
        return None

    def allow_relation(self, obj1, obj2, **hints):
        same = {DEFAULT_DB_ALIAS, settings.REPLICA_DATABASE}
        return True if {obj1._state.db, obj2._state.db} <= same else None

    def allow_migrate(self, db, app_label, **hints):
        return False if db == settings.REPLICA_DATABASE else None
