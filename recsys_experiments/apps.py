from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class RecsysExperimentsConfig(AppConfig):
    name = "recsys_experiments"
    verbose_name = "Recsys"
    default = True

    def ready(self):
        from recsys_experiments.accounts.merge import ACCOUNT_WINS, register_merge_table

        # An anonymous install's data joins the account it logs in to (accounts/merge.py):
        # where both are assigned in an experiment, the account's variant stays.
        register_merge_table(
            "rec_user_experiment_assignments",
            unique_with_user="experiment_id",
            on_conflict=ACCOUNT_WINS,
        )


class RecsysAdminConfig(admin_apps.AdminConfig):
    """Django's admin with our site (recsys_experiments/admin_site.py) as the default."""

    default = False
    default_site = "recsys_experiments.admin_site.RecsysAdminSite"
