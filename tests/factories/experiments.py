from datetime import timedelta

import factory
from django.utils import timezone

from recsys_experiments.models import Experiment, ExperimentStatus


def two_variants(control: float = 0.5, treatment: float = 0.5) -> list[dict]:
    return [
        {"name": "control", "weight": control, "config": {}},
        {"name": "treatment", "weight": treatment, "config": {}},
    ]


class ExperimentFactory(factory.django.DjangoModelFactory):
    """A draft experiment; pass status=ExperimentStatus.ACTIVE (and started_at) for a live one.
    Rows are written directly, as a migration or SQL client could; tests of the lifecycle rules
    go through the services instead."""

    class Meta:
        model = Experiment

    key = factory.Sequence(lambda n: f"experiment_{n}")
    description = factory.Faker("sentence")
    variants = factory.LazyFunction(two_variants)
    salt = factory.Sequence(lambda n: f"salt-{n}")
    status = ExperimentStatus.DRAFT


class ActiveExperimentFactory(ExperimentFactory):
    status = ExperimentStatus.ACTIVE
    started_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
