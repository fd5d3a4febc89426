"""Celery tasks of alerts: each takes ids, calls one service, names its queue."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from alerts.models import CaseNotification, WebhookDelivery
from alerts.notifications import (
    MQTT_PUBLISH_TASK,
    WEBHOOK_DELIVER_TASK,
    mqtt_publish_notification,
    webhook_backoff_seconds,
    webhook_delivery_attempt,
)


@shared_task(bind=True, name=WEBHOOK_DELIVER_TASK, acks_late=True, max_retries=20)
def webhook_deliver(self: Task[Any, Any], delivery_id: int) -> None:
    # Retries stop at WEBHOOK_MAX_ATTEMPTS (max_retries=20 is only a backstop), counted on the
    # delivery row itself, so a redelivered message cannot send more often than that.
    if not webhook_delivery_attempt(delivery_id=delivery_id):
        attempts = WebhookDelivery.objects.values_list("attempts", flat=True).get(pk=delivery_id)
        raise self.retry(countdown=webhook_backoff_seconds(attempts))


@shared_task(bind=True, name=MQTT_PUBLISH_TASK, acks_late=True, max_retries=20)
def mqtt_publish(self: Task[Any, Any], notification_id: int) -> None:
    if not mqtt_publish_notification(notification_id=notification_id):
        attempts = CaseNotification.objects.values_list("mqtt_attempts", flat=True).get(
            pk=notification_id
        )
        raise self.retry(countdown=webhook_backoff_seconds(attempts))
