from django.contrib import admin

from audit.admin import ReadOnlyAdmin
from detection.models import Case, Detection, FootageHold, ModelVersion, RetentionRun, Segment


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin[ModelVersion]):
    list_display = ["name", "is_active", "low_threshold", "high_threshold", "created_at"]
    readonly_fields = ["is_active"]


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin[Segment]):
    list_display = ["camera", "started_at", "status", "source", "original_size"]
    list_filter = ["status", "source"]
    date_hierarchy = "started_at"
    raw_id_fields = ["camera"]


@admin.register(Detection)
class DetectionAdmin(admin.ModelAdmin[Detection]):
    list_display = [
        "segment",
        "model_version",
        "score",
        "stage1_score",
        "stage2_score",
        "band",
        "inference_ms",
        "stage2_ms",
    ]
    list_filter = ["band", "model_version"]
    raw_id_fields = ["segment"]


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin[Case]):
    list_display = ["pk", "camera", "started_at", "band", "peak_score", "status"]
    list_filter = ["band", "status"]
    raw_id_fields = ["camera", "segments", "claimed_by"]
    # Status moves only through services, which check the status machine and audit the move.
    readonly_fields = ["status"]


@admin.register(RetentionRun)
class RetentionRunAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "trigger",
        "purged_segments",
        "freed_bytes",
        "storage_bytes",
        "quota_bytes",
        "quota_exceeded",
    ]


@admin.register(FootageHold)
class FootageHoldAdmin(admin.ModelAdmin[FootageHold]):
    list_display = ["site", "camera", "kind", "starts_at", "ends_at", "held_by", "released_at"]
    list_filter = ["kind", "site"]
