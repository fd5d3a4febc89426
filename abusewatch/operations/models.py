from __future__ import annotations

import secrets
from typing import ClassVar

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from cameras.models import Camera, Site
from detection.models import Band, Case, Segment


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
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Retention {self.started_at:%Y-%m-%d %H:%M} ({self.purged_segments} purged)"


def new_webhook_secret() -> str:
    return secrets.token_hex(32)


class WebhookEndpoint(models.Model):
    """A receiver of a site's case notifications, managed by operators in Django admin."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="webhook_endpoints")
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500, validators=[URLValidator(schemes=["http", "https"])])
    # Signs every delivery (HMAC-SHA256); the receiver holds a copy. Rotate by editing it.
    secret = models.CharField(max_length=128, default=new_webhook_secret)
    notify_violent = models.BooleanField(default=True)
    notify_uncertain = models.BooleanField(default=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["site__name", "name"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["site", "name"], name="webhook_unique_name_per_site"),
            models.CheckConstraint(condition=~Q(secret=""), name="webhook_secret_present"),
            models.CheckConstraint(
                condition=Q(url__startswith="http://") | Q(url__startswith="https://"),
                name="webhook_url_http",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.site.name} / {self.name}"

    def wants(self, band: str) -> bool:
        return (band == Band.VIOLENT and self.notify_violent) or (
            band == Band.UNCERTAIN and self.notify_uncertain
        )


class CaseNotification(models.Model):
    """A case announced beyond the browser at one band: at most once per case and band.

    A case that is upgraded from uncertain to violent is announced again; every other change
    of the case is not. `suppressed` notifications fell inside the camera's cooldown and were
    recorded but not sent, so one incident does not raise a storm.
    """

    class MqttStatus(models.TextChoices):
        OFF = "off", _("MQTT not configured")
        PENDING = "pending", _("Pending")
        PUBLISHED = "published", _("Published")
        FAILED = "failed", _("Failed")

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="notifications")
    camera = models.ForeignKey(Camera, on_delete=models.CASCADE, related_name="+")
    band = models.CharField(max_length=10, choices=Band.choices)
    suppressed = models.BooleanField(default=False)
    # The exact JSON every receiver gets, so a retry sends the same bytes it signed before.
    payload = models.JSONField(default=dict)
    mqtt_status = models.CharField(
        max_length=10, choices=MqttStatus.choices, default=MqttStatus.OFF
    )
    mqtt_attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["case", "band"], name="one_notification_per_band"),
            models.CheckConstraint(
                condition=Q(band__in=["violent", "uncertain"]), name="notification_band_not_safe"
            ),
        ]
        indexes: ClassVar = [
            models.Index(fields=["camera", "band", "-created_at"], name="notification_cooldown_idx")
        ]

    def __str__(self) -> str:
        return f"Case {self.case_id} as {self.band}"


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Delivered")
        FAILED = "failed", _("Gave up")

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    notification = models.ForeignKey(
        CaseNotification, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["endpoint", "notification"], name="one_delivery_per_endpoint"
            )
        ]

    def __str__(self) -> str:
        return f"Delivery {self.pk} to {self.endpoint_id}: {self.status}"


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
        ordering = ["segment", "-created_at"]
        verbose_name_plural = "working copies"
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["segment", "parameters_key"], name="one_working_copy_per_parameters"
            )
        ]

    def __str__(self) -> str:
        return f"Working copy {self.pk} of segment {self.segment_id}"
