"""Parents' viewing requests (영유아보육법 제15조의5) and the copies taken out of a centre."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from cameras.models import Camera, Site
from detection.models import FootageHold
from reports.models import PoliceReport


class ViewingRequest(models.Model):
    """A guardian's request to view footage of their child, handled by the centre's admin.

    Guardian contact is kept minimal (a name and one phone number or e-mail): enough to
    answer with a place and time, nothing more.
    """

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        SCHEDULED = "scheduled", _("Viewing scheduled")
        VIEWED = "viewed", _("Viewed")
        CLOSED = "closed", _("Closed")

    class Outcome(models.TextChoices):
        NO_CONCERN = "no_concern", _("Viewed, no further action")
        REPORTED = "reported", _("Reported to the police")
        WITHDRAWN = "withdrawn", _("Withdrawn by the guardian")
        REFUSED = "refused", _("Refused, with the reason given")

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="viewing_requests")
    camera = models.ForeignKey(Camera, on_delete=models.PROTECT, related_name="viewing_requests")
    group_or_room = models.CharField(max_length=120)
    child_label = models.CharField(max_length=120)
    guardian_name = models.CharField(max_length=120)
    guardian_contact = models.CharField(max_length=120)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.TextField(max_length=2000)
    received_at = models.DateTimeField()
    # The last day of the reply deadline, as a date in the site's time zone.
    reply_due = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    answered_at = models.DateTimeField(null=True, blank=True)
    appointment_at = models.DateTimeField(null=True, blank=True)
    appointment_place = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, blank=True)
    outcome_note = models.TextField(max_length=2000, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    hold = models.OneToOneField(FootageHold, on_delete=models.PROTECT, related_name="viewing")
    police_report = models.OneToOneField(
        PoliceReport,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="viewing_request",
    )
    last_reminded_on = models.DateField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        ordering = ["-received_at"]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="viewing_range_forward"
            ),
            models.CheckConstraint(
                condition=Q(status="closed", closed_at__isnull=False)
                | (~Q(status="closed") & Q(closed_at__isnull=True)),
                name="viewing_closed_has_time",
            ),
        ]
        indexes: ClassVar = [
            models.Index(
                fields=["reply_due"],
                name="viewing_awaiting_reply_idx",
                condition=Q(status="received"),
            ),
        ]

    def __str__(self) -> str:
        return f"Viewing request {self.pk} ({self.site})"


class ViewingAttachment(models.Model):
    """A document a guardian brings (a request form, a doctor's note)."""

    request = models.ForeignKey(
        ViewingRequest, on_delete=models.PROTECT, related_name="attachments"
    )
    file = models.FileField(upload_to="viewings/attachments/", max_length=300)
    # The name as sent, cleaned of paths and control characters; the stored name is ours.
    name = models.CharField(max_length=120)
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class TakeoutCopy(models.Model):
    """A copy taken outside the centre: everyone but the marked child mosaicked, watermarked
    with the request, the time and the recipient, and hashed into the audit chain."""

    request = models.ForeignKey(
        ViewingRequest, on_delete=models.PROTECT, related_name="takeout_copies"
    )
    file = models.FileField(upload_to="viewings/copies/", max_length=300)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    recipient = models.CharField(max_length=120)
    # The marked child's box as fractions of the frame: x, y, width, height.
    child_box = models.JSONField()
    watermark = models.CharField(max_length=300)
    segments = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"Copy {self.pk} of viewing request {self.request_id}"
