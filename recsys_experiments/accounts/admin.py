from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from rest_framework.authtoken.models import TokenProxy

from .models import IdentityMerge, User

# DRF's plain-text tokens no longer authenticate anyone (knox's do, under "Knox: Auth tokens"):
# an admin must not be offered to create them.
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "id", "is_staff", "is_anonymous_install", "date_joined")
    list_filter = ("is_anonymous_install", *DjangoUserAdmin.list_filter)
    search_fields = ("username", "email", "=id")
    readonly_fields = ("id", "is_anonymous_install")


@admin.register(IdentityMerge)
class IdentityMergeAdmin(admin.ModelAdmin):
    """The audit of anonymous identities ending in accounts: read-only."""

    list_display = ("created_at", "kind", "anonymous_user_id", "account", "counts", "source")
    list_filter = ("kind",)
    search_fields = ("=anonymous_user__id", "=account__id", "account__username")
    list_select_related = ("account",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
