"""The metric catalogue (rec_metrics) and an experiment's metrics (rec_experiment_metrics):
the seeded defaults, the CHECKs (the lists are lib/constants.py's), one primary metric per
experiment, and editing in the admin."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from recsys_experiments.lib.constants import METRIC_EVENTS, METRIC_KINDS, OUTCOME_TYPES
from telemetry.models import ExperimentMetric, Metric, MetricEvent, MetricKind
from tests.factories.experiments import ExperimentFactory
from tests.recsys_experiments.test_constants import constraint_definition, listed_values

DEFAULTS = {
    # key: (kind, numerator, denominator, value)
    "like_rate": ("ratio", "like", "impression", "count"),
    "dislike_rate": ("ratio", "dislike", "impression", "count"),
    "detail_open_rate": ("ratio", "detail_open", "impression", "count"),
    "watchlist_rate": ("ratio", "watchlist", "impression", "count"),
    "likes_per_user": ("mean", "like", None, "count"),
    "mean_rating": ("mean", "rating", None, "mean"),
    "users_with_like": ("proportion", "like", None, "count"),
}


def test_the_defaults_are_seeded(db):
    seeded = {m.key: (m.kind, m.numerator, m.denominator, m.value) for m in Metric.objects.all()}

    assert seeded == DEFAULTS
    assert all(m.name and m.description for m in Metric.objects.all())
    for metric in Metric.objects.all():
        metric.full_clean()


def test_the_lists_are_the_constants_and_the_databases(db):
    assert tuple(MetricKind.values) == METRIC_KINDS
    assert ("impression", *OUTCOME_TYPES) == METRIC_EVENTS
    assert tuple(MetricEvent.values) == METRIC_EVENTS
    assert listed_values(constraint_definition("rec_metrics", "rec_metrics_kind_check")) == (
        METRIC_KINDS
    )
    assert (
        listed_values(constraint_definition("rec_metrics", "rec_metrics_numerator_check"))
        == METRIC_EVENTS
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "funnel", "numerator": "like"},
        {"kind": "proportion", "numerator": "skip"},
        {"kind": "ratio", "numerator": "like"},
        {"kind": "mean", "numerator": "like", "denominator": "impression"},
        {"kind": "mean", "numerator": "like", "value": "mean"},
        {"kind": "ratio", "numerator": "like", "denominator": "nope"},
        {"key": "Bad Key", "kind": "proportion", "numerator": "like"},
    ],
)
def test_the_database_refuses_a_malformed_metric(db, fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        Metric.objects.create(**{"key": "probe", "name": "Probe", **fields})


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "ratio", "numerator": "like"}, "denominator"),
        ({"kind": "mean", "numerator": "like", "denominator": "impression"}, "denominator"),
        ({"kind": "mean", "numerator": "like", "value": "sum"}, "value"),
        ({"kind": "proportion", "numerator": "impression"}, "numerator"),
    ],
)
def test_the_form_names_the_field_of_a_malformed_metric(db, fields, field):
    metric = Metric(**{"key": "probe", "name": "Probe", **fields})

    with pytest.raises(ValidationError) as error:
        metric.full_clean()

    assert field in error.value.message_dict


def test_one_primary_metric_per_experiment(db):
    experiment, other = ExperimentFactory(key="one"), ExperimentFactory(key="two")
    like_rate, per_user = (
        Metric.objects.get(key="like_rate"),
        Metric.objects.get(key="likes_per_user"),
    )
    ExperimentMetric.objects.create(experiment=experiment, metric=like_rate, is_primary=True)
    ExperimentMetric.objects.create(experiment=experiment, metric=per_user)
    ExperimentMetric.objects.create(experiment=other, metric=per_user, is_primary=True)

    with pytest.raises(IntegrityError), transaction.atomic():
        ExperimentMetric.objects.filter(experiment=experiment, metric=per_user).update(
            is_primary=True
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        ExperimentMetric.objects.create(experiment=experiment, metric=like_rate)
    with pytest.raises(ProtectedError):
        like_rate.delete()
    experiment.delete()
    assert list(ExperimentMetric.objects.values_list("metric__key", flat=True)) == [
        "likes_per_user"
    ]


def test_the_catalogue_is_editable_in_the_admin(admin):
    response = admin.post(
        "/admin/telemetry/metric/add/",
        {
            "key": "rating_rate",
            "name": "Ratings per impression",
            "kind": "ratio",
            "numerator": "rating",
            "denominator": "impression",
            "value": "count",
            "description": "",
        },
    )
    refused = admin.post(
        "/admin/telemetry/metric/add/",
        {"key": "bad", "name": "Bad", "kind": "ratio", "numerator": "like", "value": "count"},
    )

    assert response.status_code == 302
    assert Metric.objects.get(key="rating_rate").denominator == "impression"
    assert refused.status_code == 200 and "needs a denominator" in refused.content.decode()
    assert admin.get("/admin/telemetry/metric/").status_code == 200
    assert admin.get("/admin/telemetry/experimentmetric/").status_code == 200
