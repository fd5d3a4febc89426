from django import forms
from django.contrib import admin

from cameras.models import Camera, PoliceStation, Site
from cameras.sources import SourceError, parse_source_uri


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

    def _clean_uri(self, field: str) -> str:
        uri = str(self.cleaned_data.get(field) or "").strip()
        if uri:
            try:
                parse_source_uri(uri)
            except SourceError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return uri

    def clean_source_uri(self) -> str:
        return self._clean_uri("source_uri")

    def clean_analysis_uri(self) -> str:
        return self._clean_uri("analysis_uri")


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
