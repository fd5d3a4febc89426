"""Case notifications beyond the browser: webhook receivers, announcements and deliveries.

The models moved here from the former `operations` app with their rows; each table kept its
name. They point at sites, cameras and cases by name ("cameras.Site"), so this bottom layer
imports no domain app.
"""

from __future__ import annotations

import secrets
from typing import ClassVar

from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class NotifiedBand(models.TextChoices):
    """The bands worth a notification (the values of detection's Band)."""

    VIOLENT = "violent", _("Violent")
    UNCERTAIN = "uncertain", _("Uncertain")


def new_webhook_secret() -> str:
    return secrets.token_hex(32)


class WebhookEndpoint(models.Model):
    """A receiver of a site's case notifications, managed by operators in Django admin."""

    site = models.ForeignKey(
        "cameras.Site", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500, validators=[URLValidator(schemes=["http", "https"])])
    # Signs every delivery (HMAC-SHA256); the receiver holds a copy. Rotate by editing it.
    secret = models.CharField(max_length=128, default=new_webhook_secret)
    notify_violent = models.BooleanField(default=True)
    notify_uncertain = models.BooleanField(default=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "operations_webhookendpoint"
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
        return (band == NotifiedBand.VIOLENT and self.notify_violent) or (
            band == NotifiedBand.UNCERTAIN and self.notify_uncertain
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

    case = models.ForeignKey(
        "detection.Case", on_delete=models.CASCADE, related_name="notifications"
    )
    camera = models.ForeignKey("cameras.Camera", on_delete=models.CASCADE, related_name="+")
    band = models.CharField(max_length=10, choices=NotifiedBand.choices)
    suppressed = models.BooleanField(default=False)
    # The exact JSON every receiver gets, so a retry sends the same bytes it signed before.
    payload = models.JSONField(default=dict)
    mqtt_status = models.CharField(
        max_length=10, choices=MqttStatus.choices, default=MqttStatus.OFF
    )
    mqtt_attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "operations_casenotification"
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
        db_table = "operations_webhookdelivery"
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["endpoint", "notification"], name="one_delivery_per_endpoint"
            )
        ]

    def __str__(self) -> str:
        return f"Delivery {self.pk} to {self.endpoint_id}: {self.status}"
