from django import forms
from django.contrib import admin

from cameras.forms import checked_source_uri
from cameras.models import Camera, PoliceStation, Site


@admin.register(PoliceStation)
class PoliceStationAdmin(admin.ModelAdmin[PoliceStation]):
    list_display = ["name", "region", "phone"]
    search_fields = ["name", "region"]
    filter_horizontal = ["liaisons"]


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin[Site]):
    # Site.clean() refuses a retention below the jurisdiction's minimum, so the admin form
    # shows the reason under the field, in Korean and English.
    list_display = ["name", "region", "jurisdiction", "retention_hours", "analysis_paused_at"]
    list_filter = ["region", "jurisdiction"]
    readonly_fields = ["analysis_paused_at", "analysis_paused_reason"]
    search_fields = ["name", "address", "director"]
    filter_horizontal = ["admins"]


class CameraAdminForm(forms.ModelForm[Camera]):
    """The admin is an operator's tool (any source kind is theirs to use), but a source the
    reader could not even parse is refused here as in the camera form and the API."""

    class Meta:
        model = Camera
        fields = "__all__"  # noqa: DJ007 - the admin shows every field of the camera

    def clean_source_uri(self) -> str:
        return checked_source_uri(str(self.cleaned_data.get("source_uri") or ""))

    def clean_analysis_uri(self) -> str:
        return checked_source_uri(str(self.cleaned_data.get("analysis_uri") or ""))


@admin.register(Camera)
class CameraAdmin(admin.ModelAdmin[Camera]):
    form = CameraAdminForm
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
