"""What the live socket says about cases and scored windows, and to whom (access.policy)."""

from __future__ import annotations

from django.db import transaction

from access.policy import CASES, DETECTIONS, groups_for
from alerts.broadcast import send_now, send_soon
from detection.models import Case, Detection
from detection.notifications import notify_case
from detection.payloads import case_payload, detection_payload

__all__ = [
    "broadcast_case",
    "broadcast_detection",
    "case_groups",
    "case_payload",
    "detection_payload",
]


def case_groups(case: Case) -> list[str]:
    return groups_for(case, CASES)


def broadcast_case(case: Case, *, event: str = "case.alert") -> None:
    """Send after the surrounding transaction commits, so no one hears of an unsaved case."""
    case_id = case.pk

    def send() -> None:
        fresh = Case.objects.select_related("camera__site").get(pk=case_id)
        send_now(case_groups(fresh), {"type": event, "case": case_payload(fresh)})
        notify_case(case_id)  # webhooks and MQTT

    transaction.on_commit(send)


def broadcast_detection(detection: Detection, *, case: Case | None = None) -> None:
    payload = detection_payload(detection, case=case)
    # The payload already names the window's site: no query for the groups.
    groups = groups_for(detection, DETECTIONS, known={"site": payload["site"]})
    # Not waited for: the inference worker sends one per window, and waiting for Redis each
    # time was 6 % of its wall time at 64 cameras. Still in order with the case messages.
    transaction.on_commit(
        lambda: send_soon(groups, {"type": "detection.scored", "detection": payload})
    )
