from django.contrib import admin

from recsys_experiments.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the audit log is written by the services, never edited."""

    list_display = ("created_at", "experiment_key", "action", "actor", "subject_user", "source")
    list_filter = ("action", "source")
    search_fields = ("experiment_key", "actor__username", "subject_user__username")
    readonly_fields = [field.name for field in AuditEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
