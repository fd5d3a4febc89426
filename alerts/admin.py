from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from alerts.models import CaseNotification, WebhookDelivery, WebhookEndpoint


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """Logs are written by the system; operators read them."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin[WebhookEndpoint]):
    list_display = ["name", "site", "url", "notify_violent", "notify_uncertain", "enabled"]
    list_filter = ["enabled", "site"]
    search_fields = ["name", "url"]
    # An address typed without a scheme is taken as https (Django 6's default, and the only
    # sensible one for a receiver of signed case alerts).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "pk",
        "endpoint",
        "notification",
        "status",
        "attempts",
        "response_code",
        "error",
        "last_attempt_at",
    ]
    list_filter = ["status"]


@admin.register(CaseNotification)
class CaseNotificationAdmin(ReadOnlyAdmin):
    list_display = ["pk", "case", "camera", "band", "suppressed", "mqtt_status", "created_at"]
    list_filter = ["band", "suppressed", "mqtt_status"]
