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
    assert ("impression", *OUTCOME_TYPES, "conversion") == METRIC_EVENTS
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
        # A conversion names its conversion with a slug; nothing else has a name.
        {"kind": "proportion", "numerator": "conversion"},
        {"kind": "proportion", "numerator": "conversion", "numerator_name": "Purchase"},
        {"kind": "proportion", "numerator": "conversion", "numerator_name": "purchase\n"},
        {"kind": "proportion", "numerator": "like", "numerator_name": "purchase"},
        {
            "kind": "ratio",
            "numerator": "conversion",
            "numerator_name": "purchase",
            "denominator": "conversion",
        },
        {
            "kind": "ratio",
            "numerator": "like",
            "denominator": "impression",
            "denominator_name": "purchase",
        },
        {"kind": "mean", "numerator": "like", "denominator_name": "purchase"},
        {"kind": "mean", "numerator": "impression", "value": "sum"},
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
        ({"kind": "mean", "numerator": "conversion", "value": "sum"}, "numerator_name"),
        ({"kind": "mean", "numerator": "conversion", "numerator_name": ""}, "numerator_name"),
        (
            {"kind": "mean", "numerator": "conversion", "numerator_name": "Watch Time"},
            "numerator_name",
        ),
        ({"kind": "mean", "numerator": "like", "numerator_name": "purchase"}, "numerator_name"),
        (
            {
                "kind": "ratio",
                "numerator": "conversion",
                "numerator_name": "purchase",
                "denominator": "conversion",
            },
            "denominator_name",
        ),
        (
            {
                "kind": "ratio",
                "numerator": "like",
                "denominator": "impression",
                "denominator_name": "purchase",
            },
            "denominator_name",
        ),
        ({"kind": "mean", "numerator": "like", "value": "mean"}, "value"),
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


VALUE_METRICS = [
    # The shapes the catalogue can express over conversions.
    ("revenue_per_user", "mean", "conversion", "purchase", None, None, "sum"),
    ("mean_order_value", "mean", "conversion", "purchase", None, None, "mean"),
    ("purchases_per_user", "mean", "conversion", "purchase", None, None, "count"),
    ("users_who_bought", "proportion", "conversion", "purchase", None, None, "count"),
    ("purchase_per_cart", "ratio", "conversion", "purchase", "conversion", "add_to_cart", "count"),
    ("purchases_per_impression", "ratio", "conversion", "purchase", "impression", None, "count"),
    ("likes_per_cart", "ratio", "like", None, "conversion", "add_to_cart", "count"),
]


@pytest.mark.parametrize(
    ("key", "kind", "numerator", "numerator_name", "denominator", "denominator_name", "value"),
    VALUE_METRICS,
)
def test_conversion_metrics_are_valid_and_stored(
    db, key, kind, numerator, numerator_name, denominator, denominator_name, value
):
    metric = Metric(
        key=key,
        name=key,
        kind=kind,
        numerator=numerator,
        numerator_name=numerator_name,
        denominator=denominator,
        denominator_name=denominator_name,
        value=value,
    )
    metric.full_clean()
    metric.save()

    stored = Metric.objects.get(key=key)
    assert stored.numerator_key == (f"conversion:{numerator_name}" if numerator_name else numerator)
    assert stored.conversion_names == {n for n in (numerator_name, denominator_name) if n}


def test_a_conversion_metric_is_added_in_the_admin_with_the_recording_help(admin):
    form = admin.get("/admin/telemetry/metric/add/").content.decode()
    response = admin.post(
        "/admin/telemetry/metric/add/",
        {
            "key": "purchase_per_cart",
            "name": "Purchases per add-to-cart",
            "kind": "ratio",
            "numerator": "conversion",
            "numerator_name": "purchase",
            "denominator": "conversion",
            "denominator_name": "add_to_cart",
            "value": "count",
            "description": "",
        },
    )
    nameless = admin.post(
        "/admin/telemetry/metric/add/",
        {
            "key": "revenue",
            "name": "Revenue",
            "kind": "mean",
            "numerator": "conversion",
            "numerator_name": "",
            "value": "sum",
            "description": "",
        },
    )
    listed = admin.get("/admin/telemetry/metric/").content.decode()

    assert "POST /api/v1/conversions" in form and "metric_name" in form
    assert response.status_code == 302
    metric = Metric.objects.get(key="purchase_per_cart")
    assert (metric.numerator_name, metric.denominator_name) == ("purchase", "add_to_cart")
    assert nameless.status_code == 200 and "Name the conversion" in nameless.content.decode()
    assert not Metric.objects.filter(key="revenue").exists()
    assert "add_to_cart" in listed
    # Blank names of other events are stored as no name (the database CHECK allows only that).
    assert Metric.objects.get(key="like_rate").numerator_name is None
