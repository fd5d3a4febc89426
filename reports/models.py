from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from cameras.models import PoliceStation
from detection.models import Case, Segment


class PoliceReport(models.Model):
    class Status(models.TextChoices):
        SENT = "sent", _("Sent")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        DISPATCHED = "dispatched", _("Dispatched")
        CLOSED = "closed", _("Closed")

    class Reason(models.TextChoices):
        VIOLENT = "violent", _("Violent detection")
        EXPERT = "expert", _("Escalated by an expert")
        VIEWING = "viewing", _("From a parent's viewing request")

    TRANSITIONS: ClassVar[dict[str, frozenset[str]]] = {
        Status.SENT: frozenset({Status.ACKNOWLEDGED, Status.CLOSED}),
        Status.ACKNOWLEDGED: frozenset({Status.DISPATCHED, Status.CLOSED}),
        Status.DISPATCHED: frozenset({Status.CLOSED}),
        Status.CLOSED: frozenset(),
    }

    case = models.OneToOneField(Case, on_delete=models.PROTECT, related_name="police_report")
    station = models.ForeignKey(PoliceStation, on_delete=models.PROTECT, related_name="reports")
    reason = models.CharField(max_length=10, choices=Reason.choices)
    status = models.CharField(max_length=15, choices=Status.choices, default=Status.SENT)
    sent_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.TextField(blank=True, max_length=5000)

    class Meta:
        ordering = ["-sent_at"]
        indexes: ClassVar = [
            models.Index(fields=["station", "-sent_at"], name="report_station_idx")
        ]

    def __str__(self) -> str:
        return f"Report {self.pk} to {self.station}"


class EvidencePackage(models.Model):
    report = models.ForeignKey(PoliceReport, on_delete=models.PROTECT, related_name="packages")
    file = models.FileField(upload_to="evidence/", max_length=300)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Evidence package {self.pk} for report {self.report_id}"


def working_copy_upload_path(copy: WorkingCopy, filename: str) -> str:
    return f"working-copies/{copy.segment_id}/{filename}"


class WorkingCopy(models.Model):
    """A re-encoded copy of a segment for viewing, with bystanders' faces blurred.

    The original is never altered; this row records how the copy was derived so that anyone
    holding it can tell what was done to it and check it against the original's hash.
    """

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="working_copies")
    file = models.FileField(upload_to=working_copy_upload_path, max_length=300)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    source_kind = models.CharField(max_length=10)
    source_sha256 = models.CharField(max_length=64)
    blur = models.BooleanField()
    # Everything that changes the output (detector settings, exempt regions, encoder options),
    # and its SHA-256 over canonical JSON: the cache key.
    parameters = models.JSONField(default=dict)
    parameters_key = models.CharField(max_length=64)
    tool = models.CharField(max_length=200)
    tool_version = models.CharField(max_length=200)
    frames = models.PositiveIntegerField(default=0)
    faces_blurred = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Moved here from the former `operations` app with its rows: the table kept its name.
        db_table = "operations_workingcopy"
        ordering = ["segment", "-created_at"]
        verbose_name_plural = "working copies"
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["segment", "parameters_key"], name="one_working_copy_per_parameters"
            )
        ]

    def __str__(self) -> str:
        return f"Working copy {self.pk} of segment {self.segment_id}"
