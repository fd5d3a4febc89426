"""Which case changes are announced beyond the browser (webhooks, MQTT): alerts sends them.

`notify_case(case_id)` is called once a case is saved and announced. It queues one task, which
records at most one notification per case and band (alerts.notifications), so a case is
announced when it opens and again if it is upgraded from uncertain to violent, never for other
changes.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from celery import signature
from django.db import transaction
from django.utils import timezone

from alerts.models import CaseNotification
from alerts.notifications import mqtt_topic, notification_record
from cameras.models import Camera
from detection.models import Band, Case
from detection.payloads import case_payload

logger = logging.getLogger(__name__)

# Kept from the former `operations` app, so messages already queued still run.
CASE_NOTIFY_TASK = "operations.case_notify"

# Cases worth a notification: a dismissed or closed case is no longer news.
ANNOUNCED_STATUSES = (
    Case.Status.OPEN,
    Case.Status.UNDER_REVIEW,
    Case.Status.ESCALATED,
    Case.Status.REPORTED,
)


def notify_case(case_id: int) -> None:
    """Queue the notifications of a case; safe to call for every case change."""
    try:
        # By name: the task (detection/tasks.py) sits above this module.
        signature(CASE_NOTIFY_TASK, args=(case_id,)).apply_async(queue="default")
    except Exception:
        # Like the live alert, this is best effort: the case and its police report stand.
        logger.exception("could not queue notifications for case %s", case_id)


def notification_payload(case: Case) -> dict[str, Any]:
    return {
        "event": f"case.{case.band}",
        "case": case_payload(case),
        "topic": mqtt_topic(site_id=case.camera.site_id, camera_id=case.camera_id),
    }


def case_notification_create(
    *, case_id: int, now: dt.datetime | None = None
) -> CaseNotification | None:
    """Record the case's notification at its current band and queue its sending.

    None when there is nothing new to announce. The camera row is locked so that two cases of
    one camera cannot both pass the cooldown check at once.
    """
    now = now or timezone.now()
    with transaction.atomic():
        case = Case.objects.select_related("camera__site").filter(pk=case_id).first()
        if case is None or case.band == Band.SAFE or case.status not in ANNOUNCED_STATUSES:
            return None
        Camera.objects.select_for_update().filter(pk=case.camera_id).first()
        return notification_record(
            case_id=case.pk,
            camera_id=case.camera_id,
            site_id=case.camera.site_id,
            band=case.band,
            payload=notification_payload(case),
            now=now,
        )
