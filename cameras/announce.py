"""What the live socket says about camera health, and to whom (access.policy)."""

from __future__ import annotations

from typing import Any

from access.policy import CAMERAS, groups_for
from alerts.broadcast import broadcast
from cameras.models import Camera
from portal.sitetime import site_time


def camera_payload(camera: Camera) -> dict[str, Any]:
    return {
        "id": camera.pk,
        "site": camera.site_id,
        "name": camera.name,
        "status": camera.status,
        "status_detail": camera.status_detail,
        "last_frame_at": camera.last_frame_at.isoformat() if camera.last_frame_at else None,
        "measured_fps": camera.measured_fps,
        # Formatted here, in the site's zone, exactly as the page renders it (issue #15).
        "last_frame_display": site_time(camera.last_frame_at, camera.site.timezone),
    }


def broadcast_camera_status(camera: Camera) -> None:
    broadcast(
        groups_for(camera, CAMERAS), {"type": "camera.status", "camera": camera_payload(camera)}
    )
