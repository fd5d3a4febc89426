"""Celery tasks of operations: each takes ids, calls one service, names its queue."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from abusewatch.operations.models import RetentionRun
from abusewatch.operations.retention import retention_run


@shared_task(name="operations.retention_sweep", acks_late=True, max_retries=0)
def retention_sweep() -> int:
    """Run by beat. Idempotent: a second run finds nothing more to erase."""
    report = retention_run(dry_run=False, trigger=RetentionRun.Trigger.SCHEDULE)
    return len(report.erasures)


@shared_task(name="operations.case_notify", acks_late=True, max_retries=3)
def case_notify(case_id: int) -> int | None:
    """Idempotent: a case is announced at most once per band."""
    from abusewatch.operations.notifications import case_notification_create

    notification = case_notification_create(case_id=case_id)
    return notification.pk if notification is not None else None


@shared_task(bind=True, name="operations.webhook_deliver", acks_late=True, max_retries=20)
def webhook_deliver(self: Task[Any, Any], delivery_id: int) -> None:
    # Retries stop at WEBHOOK_MAX_ATTEMPTS (max_retries=20 is only a backstop), counted on the
    # delivery row itself, so a
    # redelivered message cannot send more often than that.
    from abusewatch.operations.models import WebhookDelivery
    from abusewatch.operations.notifications import (
        webhook_backoff_seconds,
        webhook_delivery_attempt,
    )

    if not webhook_delivery_attempt(delivery_id=delivery_id):
        attempts = WebhookDelivery.objects.values_list("attempts", flat=True).get(pk=delivery_id)
        raise self.retry(countdown=webhook_backoff_seconds(attempts))


@shared_task(bind=True, name="operations.mqtt_publish", acks_late=True, max_retries=20)
def mqtt_publish(self: Task[Any, Any], notification_id: int) -> None:
    from abusewatch.operations.models import CaseNotification
    from abusewatch.operations.notifications import (
        mqtt_publish_notification,
        webhook_backoff_seconds,
    )

    if not mqtt_publish_notification(notification_id=notification_id):
        attempts = CaseNotification.objects.values_list("mqtt_attempts", flat=True).get(
            pk=notification_id
        )
        raise self.retry(countdown=webhook_backoff_seconds(attempts))
