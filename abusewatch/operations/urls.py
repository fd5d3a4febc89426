from __future__ import annotations

from django.urls import path

from abusewatch.operations import views

urlpatterns = [
    path("metrics", views.metrics, name="metrics"),
    path("healthz", views.healthz, name="healthz"),
    path(
        "ops/segments/<int:pk>/working-copy.mp4",
        views.working_copy,
        name="segment-working-copy",
    ),
]
