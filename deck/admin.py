from django.contrib import admin

from .models import MediaItem


@admin.register(MediaItem)
class MediaItemAdmin(admin.ModelAdmin):
    list_display = ("title", "year", "genres", "popularity")
    search_fields = ("title", "external_id")
    ordering = ("-popularity",)
