from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)
from rest_framework.routers import DefaultRouter

from abusewatch.auth_views import ObtainTokenView
from abusewatch.views import MeView
from detection.api import CaseViewSet, SegmentViewSet, serve_segment_file
from detection.edge import EdgeClipUpload
from detection.site_api import CameraViewSet, SiteViewSet
from reports.api import PoliceReportViewSet

router = DefaultRouter()
router.register("sites", SiteViewSet, basename="api-site")
router.register("cameras", CameraViewSet, basename="api-camera")
router.register("cases", CaseViewSet, basename="api-case")
router.register("segments", SegmentViewSet, basename="api-segment")
router.register("reports", PoliceReportViewSet, basename="api-report")

urlpatterns = [
    path("", include(router.urls)),
    path(
        "segments/<int:pk>/<str:kind>.mp4",
        serve_segment_file,
        name="segment-file",
    ),
    path("edge/clips/", EdgeClipUpload.as_view(), name="edge-clip-upload"),
    path("me/", MeView.as_view(), name="me"),
    path("auth/token/", ObtainTokenView.as_view(), name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file: no inline script for the CSP.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
]
