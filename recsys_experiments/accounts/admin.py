from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "id", "is_staff", "date_joined")
    search_fields = ("username", "email", "=id")
    readonly_fields = ("id",)
