from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "recsys_experiments.accounts"
    label = "accounts"
    verbose_name = "Accounts"
