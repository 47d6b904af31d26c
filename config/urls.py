from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from recsys_experiments.api.health import health_urlpattern
from recsys_experiments.api.permissions import ApiDocsPermission

DOCS_PERMISSIONS = [ApiDocsPermission]

urlpatterns = [
    path("admin/", admin.site.urls),
    health_urlpattern,
    path(
        "api/schema/",
        SpectacularAPIView.as_view(permission_classes=DOCS_PERMISSIONS),
        name="api-schema",
    ),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", permission_classes=DOCS_PERMISSIONS),
        name="api-docs",
    ),
    path("api/v1/", include("config.api_urls")),
]
