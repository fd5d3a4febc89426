from __future__ import annotations

from typing import Any

from rest_framework import serializers

from cameras.models import Camera, PoliceStation, Site
from cameras.rules import camera_setting_errors
from cameras.sources import SourceError, parse_source_uri


class PoliceStationOutput(serializers.ModelSerializer[PoliceStation]):
    class Meta:
        model = PoliceStation
        fields = ["id", "name", "region", "phone", "address"]


class SiteOutput(serializers.ModelSerializer[Site]):
    police_station = PoliceStationOutput(read_only=True)

    class Meta:
        model = Site
        fields = [
            "id",
            "name",
            "address",
            "phone",
            "director",
            "region",
            "timezone",
            "jurisdiction",
            "retention_hours",
            "analysis_paused_at",
            "analysis_paused_reason",
            "police_station",
        ]


class SiteRetentionInput(serializers.Serializer[dict[str, Any]]):
    retention_hours = serializers.IntegerField(min_value=1, max_value=24 * 3650)


class CameraOutput(serializers.ModelSerializer[Camera]):
    site_name = serializers.CharField(source="site.name", read_only=True)
    has_upload_token = serializers.SerializerMethodField()

    class Meta:
        model = Camera
        fields = [
            "id",
            "site",
            "site_name",
            "name",
            "source_uri",
            "analysis_uri",
            "enabled",
            "analysis_fps",
            "window_seconds",
            "window_overlap_seconds",
            "low_threshold",
            "high_threshold",
            "status",
            "status_detail",
            "last_frame_at",
            "measured_fps",
            "has_upload_token",
            "created_at",
            "updated_at",
        ]

    def get_has_upload_token(self, camera: Camera) -> bool:
        return bool(camera.upload_token_hash)


def _checked_uri(value: str) -> str:
    if not value:
        return value
    try:
        parse_source_uri(value)
    except SourceError as exc:
        raise serializers.ValidationError(str(exc)) from exc
    return value


class CameraInput(serializers.Serializer[dict[str, Any]]):
    """What a centre admin may set on a camera; the site is checked against their own."""

    site = serializers.IntegerField(min_value=1)
    name = serializers.CharField(max_length=120)
    source_uri = serializers.CharField(
        max_length=1000, allow_blank=True, required=False, default=""
    )
    analysis_uri = serializers.CharField(
        max_length=1000,
        allow_blank=True,
        required=False,
        default="",
        help_text="Optional lower-resolution stream of the same camera, used only for analysis.",
    )
    enabled = serializers.BooleanField(required=False, default=True)
    analysis_fps = serializers.FloatField(min_value=0.5, max_value=60, required=False, default=10.0)
    window_seconds = serializers.FloatField(
        min_value=0.5, max_value=30, required=False, default=2.0
    )
    window_overlap_seconds = serializers.FloatField(min_value=0, required=False, default=0.0)
    low_threshold = serializers.FloatField(
        min_value=0, max_value=1, allow_null=True, required=False, default=None
    )
    high_threshold = serializers.FloatField(
        min_value=0, max_value=1, allow_null=True, required=False, default=None
    )

    def validate_source_uri(self, value: str) -> str:
        return _checked_uri(value)

    def validate_analysis_uri(self, value: str) -> str:
        return _checked_uri(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = camera_setting_errors(
            low=attrs.get("low_threshold"),
            high=attrs.get("high_threshold"),
            window=attrs.get("window_seconds", 2.0),
            overlap=attrs.get("window_overlap_seconds", 0.0),
            source=attrs.get("source_uri", ""),
            analysis=attrs.get("analysis_uri", ""),
        )
        if errors:
            raise serializers.ValidationError(
                {field: str(message) for field, message in errors.items()}
            )
        return attrs


class UploadTokenOutput(serializers.Serializer[dict[str, Any]]):
    camera = serializers.IntegerField()
    upload_token = serializers.CharField(help_text="Shown once; only its hash is stored.")
