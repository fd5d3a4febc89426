"""Case notifications beyond the browser: signed webhooks and MQTT, per site.

detection's `notify_case(case_id)` is called once a case is saved and announced. It queues
one task, which records (`notification_record`) at most one `CaseNotification` per case and
band, so a case is announced when it opens and again if it is upgraded from uncertain to
violent, never for other changes. A camera that announced a case of a band less than
NOTIFY_COOLDOWN_SECONDS ago does not announce another of that band: the notification is kept
as `suppressed` and sent nowhere.

Webhook receivers check a delivery like this (Python):
    signed = f"{headers['X-AbuseWatch-Timestamp']}.".encode() + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    hmac.compare_digest(expected, headers["X-AbuseWatch-Signature"])   # and a fresh timestamp
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

from celery import signature
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.utils import timezone

from alerts.models import CaseNotification, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

# Task names kept from the former `operations` app, so messages already queued still run.
WEBHOOK_DELIVER_TASK = "operations.webhook_deliver"
MQTT_PUBLISH_TASK = "operations.mqtt_publish"
USER_AGENT = "AbuseWatch-Webhook/1"
MQTT_PUBLISH_TIMEOUT_SECONDS = 10.0


def webhook_endpoint_create(
    *,
    site: models.Model,
    name: str,
    url: str,
    notify_violent: bool = True,
    notify_uncertain: bool = True,
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        site_id=site.pk,
        name=name,
        url=url,
        notify_violent=notify_violent,
        notify_uncertain=notify_uncertain,
    )
    endpoint.full_clean()
    endpoint.save()
    return endpoint


def mqtt_topic(*, site_id: int, camera_id: int) -> str:
    # Ids only: a camera's name could hold '+', '#' or '/', which mean something in a topic.
    return f"{settings.MQTT_TOPIC_PREFIX}/sites/{site_id}/cameras/{camera_id}/cases"


def notification_record(
    *,
    case_id: int,
    camera_id: int,
    site_id: int,
    band: str,
    payload: dict[str, Any],
    now: dt.datetime,
) -> CaseNotification | None:
    """Record a case's notification at `band` and queue its sending once the caller commits.

    None when the case was already announced at that band. The caller holds the camera's row
    lock, so that two cases of one camera cannot both pass the cooldown check at once.
    """
    if CaseNotification.objects.filter(case_id=case_id, band=band).exists():
        return None
    cooldown_start = now - dt.timedelta(seconds=settings.NOTIFY_COOLDOWN_SECONDS)
    suppressed = CaseNotification.objects.filter(
        camera_id=camera_id,
        band=band,
        suppressed=False,
        created_at__gt=cooldown_start,
    ).exists()
    notification = CaseNotification(
        case_id=case_id,
        camera_id=camera_id,
        band=band,
        suppressed=suppressed,
        payload=payload,
        mqtt_status=(
            CaseNotification.MqttStatus.PENDING
            if settings.MQTT_URL and not suppressed
            else CaseNotification.MqttStatus.OFF
        ),
        created_at=now,
    )
    notification.full_clean()
    notification.save()
    if suppressed:
        return notification
    endpoints = WebhookEndpoint.objects.filter(site_id=site_id, enabled=True)
    deliveries = [
        WebhookDelivery.objects.create(endpoint=endpoint, notification=notification)
        for endpoint in endpoints
        if endpoint.wants(band)
    ]
    transaction.on_commit(lambda: _queue_sending(notification, deliveries))
    return notification


def _queue_sending(notification: CaseNotification, deliveries: list[WebhookDelivery]) -> None:
    # By name: the tasks (alerts/tasks.py) call into this module, not the other way round.
    for delivery in deliveries:
        signature(WEBHOOK_DELIVER_TASK, args=(delivery.pk,)).apply_async(queue="default")
    if notification.mqtt_status == CaseNotification.MqttStatus.PENDING:
        signature(MQTT_PUBLISH_TASK, args=(notification.pk,)).apply_async(queue="default")


# --- Webhooks --------------------------------------------------------------------------------


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def webhook_backoff_seconds(attempt: int) -> float:
    """Wait before retry number `attempt` (1, 2, ...): doubles each time."""
    return float(settings.WEBHOOK_BACKOFF_SECONDS) * float(2 ** (attempt - 1))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would re-send a signed case to an address nobody configured.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with _opener.open(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def webhook_delivery_attempt(*, delivery_id: int) -> bool:
    """Try one delivery once; True when it is settled (delivered or given up), False to retry."""
    delivery = (
        WebhookDelivery.objects.select_related("endpoint", "notification")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return True  # a redelivered task after the work was done
    body = json.dumps(
        delivery.notification.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-AbuseWatch-Event": str(delivery.notification.payload.get("event", "")),
        "X-AbuseWatch-Delivery": str(delivery.pk),
        "X-AbuseWatch-Timestamp": timestamp,
        "X-AbuseWatch-Signature": webhook_signature(
            secret=delivery.endpoint.secret, timestamp=timestamp, body=body
        ),
    }
    code: int | None = None
    error = ""
    try:
        code = _post(delivery.endpoint.url, body, headers)
        if not 200 <= code < 300:
            error = f"HTTP {code}"
    except Exception as exc:
        # The receiver's own words may be long or odd; keep the kind and a short message.
        error = f"{type(exc).__name__}: {exc}"[:500]
    with transaction.atomic():
        locked = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        locked.attempts += 1
        locked.last_attempt_at = timezone.now()
        locked.response_code = code
        locked.error = error
        if not error:
            locked.status = WebhookDelivery.Status.SUCCEEDED
            locked.delivered_at = locked.last_attempt_at
        elif locked.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            locked.status = WebhookDelivery.Status.FAILED
            logger.error(
                "webhook %s gave up on delivery %s after %s attempts: %s",
                locked.endpoint_id,
                locked.pk,
                locked.attempts,
                error,
            )
        locked.save()
    return locked.status != WebhookDelivery.Status.PENDING


# --- MQTT ------------------------------------------------------------------------------------


def _mqtt_settings() -> dict[str, Any]:
    parts = urlsplit(str(settings.MQTT_URL))
    if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
        raise ImproperlyConfigured("MQTT_URL must look like mqtt://[user:password@]host[:port]")
    tls = parts.scheme == "mqtts"
    return {
        "host": parts.hostname,
        "port": parts.port or (8883 if tls else 1883),
        "tls": tls,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }


def mqtt_publish_notification(*, notification_id: int) -> bool:
    """Publish one notification at QoS 1; True when settled, False to retry."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    notification = (
        CaseNotification.objects.select_related("camera").filter(pk=notification_id).first()
    )
    if notification is None or notification.mqtt_status != CaseNotification.MqttStatus.PENDING:
        return True
    config = _mqtt_settings()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"abusewatch-{uuid.uuid4().hex[:12]}"
    )
    if config["username"]:
        client.username_pw_set(config["username"], config["password"])
    if config["tls"]:
        client.tls_set()
    published = False
    try:
        client.connect(config["host"], config["port"], keepalive=30)
        client.loop_start()
        info = client.publish(
            mqtt_topic(site_id=notification.camera.site_id, camera_id=notification.camera_id),
            json.dumps(notification.payload, sort_keys=True, ensure_ascii=False),
            qos=1,
        )
        info.wait_for_publish(timeout=MQTT_PUBLISH_TIMEOUT_SECONDS)
        published = bool(info.is_published())
    except Exception as exc:
        logger.warning("MQTT publish of notification %s failed: %s", notification_id, exc)
    finally:
        client.disconnect()
        client.loop_stop()
    attempts = notification.mqtt_attempts + 1
    if published:
        status = CaseNotification.MqttStatus.PUBLISHED
    elif attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        status = CaseNotification.MqttStatus.FAILED
        logger.error("gave up publishing notification %s over MQTT", notification_id)
    else:
        status = CaseNotification.MqttStatus.PENDING
    CaseNotification.objects.filter(pk=notification_id).update(
        mqtt_attempts=attempts, mqtt_status=status
    )
    return status != CaseNotification.MqttStatus.PENDING
