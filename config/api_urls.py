"""Every /api/v1/ route, collected in one place."""

urlpatterns = []
