"""Sends the security counters to a connection of their own.

settings.DATABASES[AUTOCOMMIT_DATABASE] is the same database as "default", in autocommit: the
rate-limit counters (Django's database cache) and django-axes' login failures are committed
at once, even when the request that counted them is rolled back (a failed login answers 400,
which rolls the request's transaction back). Every other model stays on "default", and
migrations run there as usual.
"""

from django.conf import settings

# "django_cache" is the app label of the model Django's DatabaseCache builds for its table.
AUTOCOMMIT_APPS = {"django_cache", "axes"}


class AutocommitRouter:
    def db_for_read(self, model, **hints):
        if model._meta.app_label in AUTOCOMMIT_APPS:
            return settings.AUTOCOMMIT_DATABASE
        return None

    db_for_write = db_for_read
