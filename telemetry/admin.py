from django.contrib import admin

from .models import AlertThreshold


@admin.register(AlertThreshold)
class AlertThresholdAdmin(admin.ModelAdmin):
    list_display = ("alert", "threshold", "fires_when", "description")
    list_editable = ("threshold",)
