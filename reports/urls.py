from django.urls import path

from reports import views

urlpatterns = [
    path("", views.report_list, name="report-list"),
    path("<int:pk>/", views.report_detail, name="report-detail"),
    path("<int:pk>/status/", views.report_status, name="report-status"),
    path("<int:pk>/evidence/", views.report_evidence_create, name="evidence-create"),
    path("evidence/<str:token>/", views.evidence_download, name="evidence-download"),
]
