from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from rest_framework.authtoken.models import TokenProxy

from .models import User

# DRF's plain-text tokens no longer authenticate anyone (knox's do, under "Knox: Auth tokens"):
# an admin must not be offered to create them.
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "id", "is_staff", "date_joined")
    search_fields = ("username", "email", "=id")
    readonly_fields = ("id",)
