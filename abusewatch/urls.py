from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from abusewatch import camera_wall, views
from abusewatch.auth_views import LoginView
from reports import views as report_views

admin.site.site_header = "AbuseWatch operations"

urlpatterns = [
    path("", views.home, name="home"),
    path("ops/", views.ops_home, name="ops-home"),
    path("cases/<int:pk>/", views.case_open, name="case-open"),
    path("sites/cases/<int:pk>/", views.site_case, name="site-case"),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("sites/<int:pk>/cameras/", camera_wall.camera_wall, name="camera-wall"),
    path(
        "sites/cameras/<int:pk>/snapshot.jpg",
        camera_wall.camera_snapshot,
        name="camera-snapshot",
    ),
    path("sites/cameras/<int:pk>/recent/", camera_wall.camera_recent, name="camera-recent"),
    path("sites/", include("detection.site_urls")),
    path("reviews/", include("reviews.urls")),
    path("reports/", include("reports.urls")),
    path("viewings/", include("viewings.urls")),
    path("api/", include("abusewatch.api_urls")),
    # The admin's own login page would be a way round the limit on failed sign-ins.
    path("admin/login/", views.admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("metrics", views.metrics, name="metrics"),
    path("healthz", views.healthz, name="healthz"),
    path(
        "ops/segments/<int:pk>/working-copy.mp4",
        report_views.working_copy,
        name="segment-working-copy",
    ),
]
