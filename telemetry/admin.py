from django import forms
from django.contrib import admin

from .models import AlertThreshold, ExperimentMetric, Metric

RECORD_A_CONVERSION = (
    "A <code>conversion</code> numerator or denominator counts the app's own events with a "
    "value (a purchase, watch time). The app records them for the signed-in user with "
    "<code>POST /api/v1/conversions</code> and a body such as "
    '<code>{"conversions": [{"event_id": "order-8812", "metric_name": "purchase", '
    '"value": 12.99, "metadata": {"currency": "EUR"}}]}</code>; '
    "<code>metric_name</code> is the name you enter here. Each conversion counts for the "
    'variants the user was in when it occurred (docs/deck.md, "Recording a conversion"). '
    "Sum or mean of the values per user: kind <em>mean</em> with value sum or mean; count per "
    "user: kind <em>mean</em> with value count; users with at least one: kind "
    "<em>proportion</em>; purchases per add-to-cart: kind <em>ratio</em> with two conversions."
)


class MetricForm(forms.ModelForm):
    class Meta:
        model = Metric
        fields = "__all__"  # noqa: DJ007 - the admin's fieldsets choose
        widgets = {
            "numerator_name": forms.TextInput(attrs={"placeholder": "purchase"}),
            "denominator_name": forms.TextInput(attrs={"placeholder": "add_to_cart"}),
        }


@admin.register(AlertThreshold)
class AlertThresholdAdmin(admin.ModelAdmin):
    list_display = ("alert", "threshold", "fires_when", "description")
    list_editable = ("threshold",)


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    """The metric catalogue; a metric an experiment uses cannot be deleted (PROTECT)."""

    form = MetricForm
    list_display = (
        "key",
        "name",
        "kind",
        "numerator",
        "numerator_name",
        "denominator",
        "denominator_name",
        "value",
    )
    list_filter = ("kind", "numerator")
    search_fields = ("key", "name", "description", "numerator_name", "denominator_name")
    fieldsets = (
        (None, {"fields": ("key", "name", "kind", "value", "description")}),
        (
            "What it counts",
            {
                "fields": ("numerator", "numerator_name", "denominator", "denominator_name"),
                "description": RECORD_A_CONVERSION,
            },
        ),
    )


@admin.register(ExperimentMetric)
class ExperimentMetricAdmin(admin.ModelAdmin):
    """Which catalogue metrics an experiment reports, and its one primary metric."""

    list_display = ("experiment", "metric", "is_primary")
    list_filter = ("is_primary", "metric")
    search_fields = ("experiment__key", "metric__key")
    autocomplete_fields = ("experiment",)
    list_select_related = ("experiment", "metric")
