from django.urls import path

from detection import site_views as views

urlpatterns = [
    path("", views.site_list, name="site-list"),
    path("<int:pk>/", views.site_detail, name="site-detail"),
    path("<int:pk>/retention/", views.site_retention, name="site-retention"),
    path("<int:site_pk>/cameras/new/", views.camera_create_view, name="camera-create"),
    path("cameras/<int:pk>/", views.camera_detail, name="camera-detail"),
    path("cameras/<int:pk>/edit/", views.camera_edit, name="camera-edit"),
]
