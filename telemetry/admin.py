from django.contrib import admin

from .models import AlertThreshold, ExperimentMetric, Metric


@admin.register(AlertThreshold)
class AlertThresholdAdmin(admin.ModelAdmin):
    list_display = ("alert", "threshold", "fires_when", "description")
    list_editable = ("threshold",)


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    """The metric catalogue; a metric an experiment uses cannot be deleted (PROTECT)."""

    list_display = ("key", "name", "kind", "numerator", "denominator", "value")
    list_filter = ("kind",)
    search_fields = ("key", "name", "description")
    fields = ("key", "name", "kind", "numerator", "denominator", "value", "description")


@admin.register(ExperimentMetric)
class ExperimentMetricAdmin(admin.ModelAdmin):
    """Which catalogue metrics an experiment reports, and its one primary metric."""

    list_display = ("experiment", "metric", "is_primary")
    list_filter = ("is_primary", "metric")
    search_fields = ("experiment__key", "metric__key")
    autocomplete_fields = ("experiment",)
    list_select_related = ("experiment", "metric")
