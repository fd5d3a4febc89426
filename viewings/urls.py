from django.urls import path

from viewings import views

urlpatterns = [
    path("site/<int:site_pk>/", views.request_list, name="viewing-list"),
    path("site/<int:site_pk>/access-log/", views.access_log, name="access-log"),
    path("<int:pk>/", views.request_detail, name="viewing-detail"),
    path("<int:pk>/<str:step>/", views.request_step, name="viewing-step"),
    path(
        "<int:pk>/attachments/<int:attachment_pk>/",
        views.attachment_download,
        name="viewing-attachment",
    ),
    path("copies/<int:pk>/", views.copy_download, name="viewing-copy"),
]
