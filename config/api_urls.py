"""Every /api/v1/ route, collected in one place."""

from django.urls import path

from deck.api import AssignmentsApi, DeckApi
from recsys_experiments.accounts.api import (
    AnonymousApi,
    LogoutAllApi,
    LogoutApi,
    SignupApi,
    TokenApi,
)
from recsys_experiments.api import admin_assignments, admin_experiments
from recsys_experiments.api.manifest import ExperimentsManifestApi
from recsys_experiments.api.me import MyExperimentsApi
from telemetry.admin_api import TelemetryHealthApi
from telemetry.api import ConversionsApi, ExposuresApi, OutcomesApi
from telemetry.results.api import ExperimentMetricsApi

urlpatterns = [
    path("auth/token", TokenApi.as_view(), name="auth-token"),
    path("auth/anonymous", AnonymousApi.as_view(), name="auth-anonymous"),
    path("auth/signup", SignupApi.as_view(), name="auth-signup"),
    path("auth/logout", LogoutApi.as_view(), name="auth-logout"),
    path("auth/logout-all", LogoutAllApi.as_view(), name="auth-logout-all"),
    path("deck", DeckApi.as_view(), name="deck"),
    path("outcomes", OutcomesApi.as_view(), name="outcomes"),
    path("assignments", AssignmentsApi.as_view(), name="assignments"),
    path("exposures", ExposuresApi.as_view(), name="exposures"),
    path("conversions", ConversionsApi.as_view(), name="conversions"),
    path("me/experiments", MyExperimentsApi.as_view(), name="me-experiments"),
    path("experiments/manifest", ExperimentsManifestApi.as_view(), name="experiments-manifest"),
    path(
        "admin/experiments",
        admin_experiments.ExperimentListCreateApi.as_view(),
        name="admin-experiments",
    ),
    path(
        "admin/experiments/<str:key>",
        admin_experiments.ExperimentDetailApi.as_view(),
        name="admin-experiment",
    ),
    path(
        "admin/experiments/<str:key>/activate",
        admin_experiments.ExperimentActivateApi.as_view(),
        name="admin-experiment-activate",
    ),
    path(
        "admin/experiments/<str:key>/end",
        admin_experiments.ExperimentEndApi.as_view(),
        name="admin-experiment-end",
    ),
    path(
        "admin/experiments/<str:key>/duplicate",
        admin_experiments.ExperimentDuplicateApi.as_view(),
        name="admin-experiment-duplicate",
    ),
    path(
        "admin/experiments/<str:key>/rotate-salt",
        admin_experiments.ExperimentRotateSaltApi.as_view(),
        name="admin-experiment-rotate-salt",
    ),
    path(
        "admin/experiments/<str:key>/metrics",
        ExperimentMetricsApi.as_view(),
        name="admin-experiment-metrics",
    ),
    path(
        "admin/assignments",
        admin_assignments.AssignmentListCreateApi.as_view(),
        name="admin-assignments",
    ),
    path(
        "admin/assignments/<str:experiment_key>/<uuid:user_id>",
        admin_assignments.AssignmentResetApi.as_view(),
        name="admin-assignment-reset",
    ),
    path(
        "admin/telemetry/health",
        TelemetryHealthApi.as_view(),
        name="admin-telemetry-health",
    ),
]
