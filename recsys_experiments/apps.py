from django.apps import AppConfig


class RecsysExperimentsConfig(AppConfig):
    name = "recsys_experiments"
    verbose_name = "Recsys"
