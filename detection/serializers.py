from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from detection.models import Case, Detection, Segment


class SegmentOutput(serializers.ModelSerializer[Segment]):
    original_url = serializers.SerializerMethodField()
    preview_url = serializers.SerializerMethodField()

    class Meta:
        model = Segment
        fields = [
            "id",
            "camera",
            "started_at",
            "ended_at",
            "source",
            "status",
            "original_sha256",
            "original_size",
            "motion_score",
            "original_url",
            "preview_url",
        ]

    def get_original_url(self, segment: Segment) -> str | None:
        if not segment.original:
            return None
        return reverse("segment-file", kwargs={"pk": segment.pk, "kind": "original"})

    def get_preview_url(self, segment: Segment) -> str | None:
        if not segment.preview:
            return None
        return reverse("segment-file", kwargs={"pk": segment.pk, "kind": "preview"})


class DetectionOutput(serializers.ModelSerializer[Detection]):
    model_version = serializers.CharField(source="model_version.name")

    class Meta:
        model = Detection
        fields = [
            "id",
            "segment",
            "model_version",
            "score",
            "band",
            "stage1_score",
            "stage2_score",
            "inference_ms",
            "stage2_ms",
            "created_at",
        ]


class CaseOutput(serializers.ModelSerializer[Case]):
    camera_name = serializers.CharField(source="camera.name")
    site = serializers.IntegerField(source="camera.site_id")
    site_name = serializers.CharField(source="camera.site.name")

    class Meta:
        model = Case
        fields = [
            "id",
            "camera",
            "camera_name",
            "site",
            "site_name",
            "started_at",
            "ended_at",
            "peak_score",
            "band",
            "status",
            "reviews_required",
            "created_at",
            "updated_at",
        ]


class CaseDetailOutput(CaseOutput):
    segments = SegmentOutput(many=True, read_only=True)

    class Meta(CaseOutput.Meta):
        fields = [*CaseOutput.Meta.fields, "segments"]
