from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from cameras.models import PoliceStation
from detection.models import Case


class PoliceReport(models.Model):
    class Status(models.TextChoices):
        SENT = "sent", _("Sent")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        DISPATCHED = "dispatched", _("Dispatched")
        CLOSED = "closed", _("Closed")

    class Reason(models.TextChoices):
        VIOLENT = "violent", _("Violent detection")
        EXPERT = "expert", _("Escalated by an expert")

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


class AuditEvent(models.Model):
    """An append-only, hash-chained record of who did what.

    Each row stores the hash of the row before it and its own hash over its content and that
    link, so editing, inserting or removing a row breaks the chain from there on. The database
    refuses UPDATE and DELETE (triggers added by migration), and the unique `prev_hash` stops
    two writers from extending the chain from the same row.

    The hashes are unkeyed: someone who can drop the triggers can cut the newest rows off, or
    edit a row and rehash everything after it, and the chain alone still looks whole. What
    catches that is outside the database: every evidence package pins the chain's newest event
    and its hash in its signed manifest, and `verify_evidence` checks that event is still there.
    """

    class Outcome(models.TextChoices):
        SUCCESS = "success", _("Success")
        DENIED = "denied", _("Denied")
        FAILED = "failed", _("Failed")

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    # The actor's username at the time, kept even if the account is later renamed or removed.
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=80, db_index=True)
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    occurred_at = models.DateTimeField()
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, unique=True)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]
        indexes: ClassVar = [
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
        ]
        constraints: ClassVar = [
            models.CheckConstraint(condition=~Q(hash=""), name="audit_hash_present"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action}"
