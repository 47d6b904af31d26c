from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class RecsysExperimentsConfig(AppConfig):
    name = "recsys_experiments"
    verbose_name = "Recsys"
    default = True


class RecsysAdminConfig(admin_apps.AdminConfig):
    """Django's admin with our site (recsys_experiments/admin_site.py) as the default."""

    default = False
    default_site = "recsys_experiments.admin_site.RecsysAdminSite"
