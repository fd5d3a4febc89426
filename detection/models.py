from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from cameras.models import Camera, Site
from detection.bands import Band

__all__ = [
    "Band",
    "Case",
    "Detection",
    "FootageHold",
    "ModelVersion",
    "RetentionRun",
    "Segment",
    "Stage2Skipped",
]


class ModelVersion(models.Model):
    name = models.CharField(max_length=100, unique=True)
    artifact_path = models.CharField(max_length=500)
    low_threshold = models.FloatField()
    high_threshold = models.FloatField()
    metrics = models.JSONField(default=dict, blank=True)
    card = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints: ClassVar = [
            # Exactly one model decides at a time; promotion swaps the flag in one transaction.
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="one_active_model_version"
            ),
            models.CheckConstraint(
                condition=Q(low_threshold__gte=0)
                & Q(high_threshold__lte=1)
                & Q(low_threshold__lt=F("high_threshold")),
                name="model_version_thresholds_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name


def segment_upload_path(segment: Segment, filename: str) -> str:
    started = segment.started_at
    return f"segments/{segment.camera_id}/{started:%Y/%m/%d}/{filename}"


def segment_snapshot_name(segment: Segment, *, blur: bool) -> str:
    """Where the camera wall keeps the window's still (reports.snapshots makes it); named here
    so that erasing the window's footage erases its stills too (detection.retention)."""
    kind = "blurred" if blur else "original"
    return f"snapshots/camera-{segment.camera_id}/segment-{segment.pk}-{kind}.jpg"


class Segment(models.Model):
    """One analysis window of one camera, with its footage."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for analysis")
        ANALYSED = "analysed", _("Analysed")
        SKIPPED = "skipped", _("Skipped: no motion")
        FAILED = "failed", _("Analysis failed")
        PURGED = "purged", _("Footage erased by retention")

    class Source(models.TextChoices):
        INGEST = "ingest", _("Camera stream")
        EDGE = "edge", _("Pushed by an edge device")

    camera = models.ForeignKey(Camera, on_delete=models.PROTECT, related_name="segments")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.INGEST)
    # The bitstream as the camera sent it (remuxed, never re-encoded): this is the evidence.
    original = models.FileField(upload_to=segment_upload_path, max_length=300, blank=True)
    original_sha256 = models.CharField(max_length=64, blank=True)
    original_size = models.PositiveBigIntegerField(default=0)
    # Browser-playable H.264 MP4; may be the original itself when it already is one.
    preview = models.FileField(upload_to=segment_upload_path, max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    motion_score = models.FloatField(null=True, blank=True)
    frame_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the window was last handed to the inference queue, and how many times: the
    # reconciler re-queues windows pending too long (a lost broker message, a killed worker)
    # and gives up with a reason after PENDING_MAX_ATTEMPTS (detection.reconcile).
    queued_at = models.DateTimeField(null=True, blank=True)
    analysis_attempts = models.PositiveSmallIntegerField(default=0)
    status_reason = models.CharField(max_length=300, blank=True)
    # When the inference worker, behind by more than INFERENCE_MAX_LAG_SECONDS, put this window
    # aside to score it in idle time (detection.backpressure). Kept once it is scored or
    # skipped: a skipped window with this set was skipped for capacity, not for lack of motion.
    deferred_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["camera", "started_at"], name="segment_unique_start"),
            models.CheckConstraint(
                condition=Q(ended_at__gt=F("started_at")), name="segment_ends_after_start"
            ),
        ]
        indexes: ClassVar = [
            models.Index(fields=["camera", "-started_at"], name="segment_camera_time_idx"),
            models.Index(
                fields=["created_at"],
                name="segment_pending_idx",
                condition=Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.camera} @ {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def duration_seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()


class Stage2Skipped(models.TextChoices):
    """Why a window the cascade's gate passed was decided on stage 1 alone."""

    NO = "", _("Not skipped")
    OVER_CAPACITY = "over_capacity", _("Over capacity: stage 2 would have fallen behind")
    UNREADABLE = "unreadable", _("Stage 2 could not read the window")


class Detection(models.Model):
    Stage2Skipped = Stage2Skipped

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="detections")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    # The fused score (the cascade's; stage 1's own for a one-stage model): what triage bands.
    score = models.FloatField()
    band = models.CharField(max_length=10, choices=Band.choices)
    low_threshold = models.FloatField()
    high_threshold = models.FloatField()
    # The stages' own scores: stage 1 (the CNN) for every window; stage 2 (pose) only where
    # the cascade's gate let the window through (null: stopped by the gate, a one-stage model,
    # or a detection scored before the cascade).
    stage1_score = models.FloatField(null=True, blank=True)
    stage2_score = models.FloatField(null=True, blank=True)
    preprocess_ms = models.FloatField(default=0)
    # Stage 1's model call for the whole batch (as before the cascade).
    inference_ms = models.FloatField(default=0)
    # Stage 2 on this window (decoding its full-size frames included); null when it did not run.
    stage2_ms = models.FloatField(null=True, blank=True)
    # Set where the gate passed the window but stage 2 did not score it: the fused score is
    # then stage 1's path (`fuse(stage1, None)`), and this says why (detection.backpressure).
    stage2_skipped = models.CharField(
        max_length=20, choices=Stage2Skipped.choices, blank=True, default=""
    )
    batch_size = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints: ClassVar = [
            # A redelivered inference task must not score the same window twice.
            models.UniqueConstraint(
                fields=["segment", "model_version"], name="one_detection_per_segment_and_model"
            ),
            models.CheckConstraint(
                condition=Q(score__gte=0) & Q(score__lte=1), name="detection_score_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.segment}: {self.score:.3f} ({self.band})"


class SpanEnd(models.TextChoices):
    QUIET = "quiet", _("Ended after a quiet period")
    MAX_LENGTH = "max_length", _("Ended at the maximum length")
    REPORTED = "reported", _("Frozen: reported to police")


class Case(models.Model):
    """Consecutive non-safe windows of one camera, handled as one incident."""

    SpanEnd = SpanEnd

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        UNDER_REVIEW = "under_review", _("Under review")
        ESCALATED = "escalated", _("Escalated")
        DISMISSED = "dismissed", _("Dismissed")
        REPORTED = "reported", _("Reported to police")
        CLOSED = "closed", _("Closed")

    # The only moves a case may make; services refuse every other.
    TRANSITIONS: ClassVar[dict[str, frozenset[str]]] = {
        Status.OPEN: frozenset({Status.UNDER_REVIEW, Status.REPORTED, Status.DISMISSED}),
        Status.UNDER_REVIEW: frozenset({Status.OPEN, Status.ESCALATED, Status.DISMISSED}),
        Status.ESCALATED: frozenset({Status.REPORTED}),
        Status.DISMISSED: frozenset({Status.CLOSED}),
        Status.REPORTED: frozenset({Status.CLOSED}),
        Status.CLOSED: frozenset(),
    }

    camera = models.ForeignKey(Camera, on_delete=models.PROTECT, related_name="cases")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    peak_score = models.FloatField()
    band = models.CharField(max_length=10, choices=Band.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    segments = models.ManyToManyField(Segment, related_name="cases", blank=True)
    # An expert's claim locks the case for review until it expires.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="claimed_cases",
    )
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    # Reviews needed before a decision stands; raised to 2 by a dismissal (it needs agreement).
    reviews_required = models.PositiveSmallIntegerField(default=1)
    # The incident's span ends for good: after a quiet period, at the maximum length, or once
    # reported (what the police received must not change). Later activity opens a new case;
    # a follow-up of a reported or over-long case points back to it.
    span_ended_at = models.DateTimeField(null=True, blank=True)
    span_end_reason = models.CharField(
        max_length=12, choices=SpanEnd.choices, blank=True, default=""
    )
    follows = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="follow_ups"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at"]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(ended_at__gte=F("started_at")), name="case_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(band__in=["violent", "uncertain"]), name="case_band_not_safe"
            ),
            models.CheckConstraint(
                condition=Q(peak_score__gte=0) & Q(peak_score__lte=1), name="case_peak_score_range"
            ),
            models.CheckConstraint(
                condition=Q(reviews_required__gte=1) & Q(reviews_required__lte=5),
                name="case_reviews_required_range",
            ),
            models.CheckConstraint(
                condition=(Q(span_ended_at__isnull=True) & Q(span_end_reason=""))
                | (Q(span_ended_at__isnull=False) & ~Q(span_end_reason="")),
                name="case_span_end_has_reason",
            ),
        ]
        indexes: ClassVar = [
            models.Index(fields=["camera", "-ended_at"], name="case_camera_recent_idx"),
            models.Index(
                fields=["-peak_score"],
                name="case_review_queue_idx",
                condition=Q(status__in=["open", "under_review"], band="uncertain"),
            ),
        ]

    def __str__(self) -> str:
        return f"Case {self.pk} ({self.band}, {self.status})"

    def can_move_to(self, status: str) -> bool:
        return status in self.TRANSITIONS[self.status]


class RetentionRun(models.Model):
    """One pass of retention; the latest one feeds the storage metrics and the operator page."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("Periodic task")
        COMMAND = "command", _("manage.py retention")

    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    dry_run = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    purged_segments = models.PositiveIntegerField(default=0)
    freed_bytes = models.PositiveBigIntegerField(default=0)
    # Bytes under MEDIA_ROOT after the run, and the quota it was held to (0 = no quota).
    storage_bytes = models.PositiveBigIntegerField(default=0)
    quota_bytes = models.PositiveBigIntegerField(default=0)
    quota_exceeded = models.BooleanField(default=False)

    class Meta:
        # Moved here from the former `operations` app with its rows: the table kept its name.
        db_table = "operations_retentionrun"
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Retention {self.started_at:%Y-%m-%d %H:%M} ({self.purged_segments} purged)"


class FootageHold(models.Model):
    """Footage of a site (one camera, or all of them) over a time range that retention must
    keep, whatever its age: a parent's viewing request or a legal hold an operator placed.

    Upper layers (viewing requests) record a hold here; retention reads only this table, so it
    needs to know nothing of why footage is held. A hold is released, never deleted, so the
    reason footage was kept stays on record.
    """

    class Kind(models.TextChoices):
        VIEWING_REQUEST = "viewing", _("Parent's viewing request")
        LEGAL = "legal", _("Legal hold")

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="footage_holds")
    # Blank means every camera of the site (a parent names a room, not always a camera).
    camera = models.ForeignKey(
        Camera, on_delete=models.PROTECT, related_name="footage_holds", null=True, blank=True
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # What holds it, e.g. "viewings.ViewingRequest:12", for the access log and the admin.
    held_by = models.CharField(max_length=120, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="footage_hold_range_forward"
            ),
        ]
        indexes: ClassVar = [
            models.Index(
                fields=["site"], name="footage_hold_active_idx", condition=Q(released_at=None)
            ),
        ]

    def __str__(self) -> str:
        return f"Hold {self.pk} ({self.kind}) {self.starts_at:%Y-%m-%d %H:%M}-{self.ends_at:%H:%M}"
