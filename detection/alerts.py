"""Live messages to browsers over Channels, each sent only to the groups allowed to see it.

Groups (a websocket joins those its user's attachments allow, see `groups_for_user`):
- `operators`                     every message
- `site.<site id>`                 that centre's admins: its cases and camera health
- `station.<station id>`           that station's liaisons: violent/escalated cases and reports
- `experts.all` / `experts.region.<hash>`   experts: uncertain cases (all, or of their regions)

Every message is JSON with a `type`:
- `case.alert`   a new case; `case.status` a case changed (both carry `case`, see `case_payload`)
- `camera.status` camera health changed (carries `camera`, see `camera_payload`)
- `report.status` a police report changed (carries `report`)
- `detection.scored` a window was scored (carries `detection`, see `detection_payload`); sent to
  operators and the site's group only, for live score timelines and health pages
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction
from django.urls import reverse

from detection.models import Band, Case, Detection

if TYPE_CHECKING:
    from abusewatch.typing import AnyUser
    from cameras.models import Camera
    from reports.models import PoliceReport

logger = logging.getLogger(__name__)

OPERATORS_GROUP = "operators"
EXPERTS_ALL_GROUP = "experts.all"


def site_group(site_id: int) -> str:
    return f"site.{site_id}"


def station_group(station_id: int) -> str:
    return f"station.{station_id}"


def region_group(region: str) -> str:
    # Group names must be ASCII; region names are often Korean.
    digest = hashlib.sha256(region.encode("utf-8")).hexdigest()[:16]
    return f"experts.region.{digest}"


def groups_for_user(user: AnyUser) -> list[str]:
    """The groups a user's websocket may join; none for an outsider."""
    from cameras.models import PoliceStation, Site
    from detection.selectors import expert_profile_of

    if not user.is_authenticated or not user.is_active or user.pk is None:
        return []
    if user.is_superuser:
        return [OPERATORS_GROUP]
    groups = [
        site_group(pk)
        for pk in Site.objects.filter(admins__id=user.pk).values_list("pk", flat=True)
    ]
    groups += [
        station_group(pk)
        for pk in PoliceStation.objects.filter(liaisons__id=user.pk).values_list("pk", flat=True)
    ]
    profile = expert_profile_of(user)
    if profile is not None:
        if profile.covers_every_region:
            groups.append(EXPERTS_ALL_GROUP)
        else:
            groups += [region_group(region) for region in profile.region_names()]
    return groups


def case_payload(case: Case) -> dict[str, Any]:
    camera = case.camera
    first_segment = case.segments.order_by("started_at").first()
    preview_url = (
        reverse("segment-file", kwargs={"pk": first_segment.pk, "kind": "preview"})
        if first_segment is not None and first_segment.preview
        else None
    )
    return {
        "id": case.pk,
        "camera": camera.pk,
        "camera_name": camera.name,
        "site": camera.site_id,
        "site_name": camera.site.name,
        "band": case.band,
        "status": case.status,
        "peak_score": round(case.peak_score, 4),
        "started_at": case.started_at.isoformat(),
        "ended_at": case.ended_at.isoformat(),
        "preview_url": preview_url,
    }


def camera_payload(camera: Camera) -> dict[str, Any]:
    return {
        "id": camera.pk,
        "site": camera.site_id,
        "name": camera.name,
        "status": camera.status,
        "status_detail": camera.status_detail,
        "last_frame_at": camera.last_frame_at.isoformat() if camera.last_frame_at else None,
        "measured_fps": camera.measured_fps,
    }


def case_groups(case: Case) -> list[str]:
    from reports.models import PoliceReport

    site = case.camera.site
    groups = [OPERATORS_GROUP, site_group(site.pk)]
    if case.band == Band.UNCERTAIN:
        groups += [EXPERTS_ALL_GROUP, region_group(site.region)]
    # The station a report went to keeps hearing of its case even after the site moves to
    # another station; a violent case not yet reported goes to the site's station.
    report = PoliceReport.objects.filter(case_id=case.pk).only("station_id").first()
    if report is not None:
        groups.append(station_group(report.station_id))
    elif case.band == Band.VIOLENT:
        groups.append(station_group(site.police_station_id))
    return groups


_SEND_TIMEOUT_SECONDS = 10.0
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()


def _broadcast_loop() -> asyncio.AbstractEventLoop:
    """One event loop thread per process for sends from sync code (workers, ingestion, views).

    channels_redis binds its Redis connections to the event loop that opened them. A fresh
    `async_to_sync` per send may run on a new loop each time and intermittently fails on
    connections of a closed one (channels_redis#332), dropping alerts. A loop that lives as
    long as the process keeps one set of connections. Made lazily per pid, so a forked Celery
    child gets its own.
    """
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="alert-broadcast", daemon=True).start()
            _loop_pid = os.getpid()
        return _loop


async def _send_all(layer: Any, groups: list[str], message: dict[str, Any]) -> None:
    for group in groups:
        try:
            await layer.group_send(group, {"type": "broadcast", "message": message})
        except Exception:
            # A live alert is best effort: the case is stored and the police report sent
            # whether or not a browser hears about it.
            logger.exception("could not send %s to %s", message.get("type"), group)


def _send(groups: list[str], message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    unique_groups = list(dict.fromkeys(groups))
    if isinstance(layer, InMemoryChannelLayer):
        # The one-process setup: its queues belong to the loop of the process's consumers.
        async_to_sync(_send_all)(layer, unique_groups, message)
        return
    future = asyncio.run_coroutine_threadsafe(
        _send_all(layer, unique_groups, message), _broadcast_loop()
    )
    try:
        future.result(timeout=_SEND_TIMEOUT_SECONDS)
    except Exception:
        logger.exception("could not send %s", message.get("type"))


def broadcast_case(case: Case, *, event: str = "case.alert") -> None:
    """Send after the surrounding transaction commits, so no one hears of an unsaved case."""
    case_id = case.pk

    def send() -> None:
        fresh = Case.objects.select_related("camera__site").get(pk=case_id)
        _send(case_groups(fresh), {"type": event, "case": case_payload(fresh)})
        from abusewatch.operations.notifications import notify_case  # webhooks and MQTT

        notify_case(case_id)

    transaction.on_commit(send)


def broadcast_camera_status(camera: Camera) -> None:
    payload = camera_payload(camera)
    transaction.on_commit(
        lambda: _send(
            [OPERATORS_GROUP, site_group(camera.site_id)],
            {"type": "camera.status", "camera": payload},
        )
    )


def detection_payload(detection: Detection, *, case: Case | None = None) -> dict[str, Any]:
    segment = detection.segment
    return {
        "id": detection.pk,
        "segment": segment.pk,
        "camera": segment.camera_id,
        "site": segment.camera.site_id,
        "score": round(detection.score, 4),
        "band": detection.band,
        "started_at": segment.started_at.isoformat(),
        "ended_at": segment.ended_at.isoformat(),
        "case": case.pk if case is not None else None,
    }


def broadcast_detection(detection: Detection, *, case: Case | None = None) -> None:
    payload = detection_payload(detection, case=case)
    transaction.on_commit(
        lambda: _send(
            [OPERATORS_GROUP, site_group(payload["site"])],
            {"type": "detection.scored", "detection": payload},
        )
    )


def broadcast_report(report: PoliceReport) -> None:
    payload = {
        "id": report.pk,
        "case": report.case_id,
        "station": report.station_id,
        "status": report.status,
        "reason": report.reason,
        "sent_at": report.sent_at.isoformat(),
    }
    transaction.on_commit(
        lambda: _send(
            [OPERATORS_GROUP, station_group(report.station_id)],
            {"type": "report.status", "report": payload},
        )
    )
