from django.contrib import admin

from cameras.models import Camera, PoliceStation, Site


@admin.register(PoliceStation)
class PoliceStationAdmin(admin.ModelAdmin[PoliceStation]):
    list_display = ["name", "region", "phone"]
    search_fields = ["name", "region"]
    filter_horizontal = ["liaisons"]


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin[Site]):
    list_display = ["name", "region", "police_station", "retention_hours"]
    list_filter = ["region"]
    search_fields = ["name", "address", "director"]
    filter_horizontal = ["admins"]


@admin.register(Camera)
class CameraAdmin(admin.ModelAdmin[Camera]):
    list_display = ["name", "site", "enabled", "status", "last_frame_at", "measured_fps"]
    list_filter = ["status", "enabled", "site"]
    search_fields = ["name", "site__name"]
    readonly_fields = [
        "status",
        "status_detail",
        "last_frame_at",
        "measured_fps",
        "upload_token_hash",
    ]
