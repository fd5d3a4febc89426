"""The centre admins' camera wall and a camera's last minutes (issue #15, Deliver 7).

Admins had no picture of their cameras. The wall shows a recent still of every camera of a
site (the latest stored window's first frame, refreshed at a low rate and when the camera's
status changes on the socket); a camera's "last minutes" plays its recent windows in turn.
Who may see which camera is the access policy's (cameras_visible_to); faces are pixelated for
everyone the policy does not let see them (access.policy.may_view_unblurred).
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from access.policy import may_view_unblurred
from audit.services import audit_record
from cameras.selectors import cameras_visible_to, sites_visible_to
from detection.capacity import capacity_notes
from detection.models import Segment
from portal.http import client_ip, scoped_or_404
from portal.sitetime import site_time
from reports.snapshots import SnapshotUnavailable, snapshot_for

# How far back "the last minutes" reach, and how many windows the player queues at most.
RECENT_MINUTES = 5
RECENT_MAX_SEGMENTS = 150
# The wall's pictures are refreshed at most this often (seconds); the page says so.
WALL_REFRESH_SECONDS = 30


# A corrupt or vanished latest window must not blank a tile: the still falls back to the
# window before it, at most this many back.
SNAPSHOT_TRIES = 3


def _latest_segments(camera_id: int, count: int = 1) -> list[Segment]:
    return list(
        Segment.objects.filter(camera_id=camera_id)
        .exclude(status=Segment.Status.PURGED)
        .exclude(preview="", original="")
        .order_by("-started_at")[:count]
    )


def _latest_segment(camera_id: int) -> Segment | None:
    latest = _latest_segments(camera_id)
    return latest[0] if latest else None


@require_GET
@login_required
def camera_wall(request: HttpRequest, pk: int) -> HttpResponse:
    site = scoped_or_404(
        sites_visible_to(request.user),
        pk,
        request=request,
        action="camera_wall.view",
        details={"site": pk},
        message="No such site.",
    )
    cameras = cameras_visible_to(request.user).filter(site=site).order_by("name")
    notes = capacity_notes(camera.pk for camera in cameras)
    tiles = []
    for camera in cameras:
        latest = _latest_segment(camera.pk)
        tiles.append(
            {
                "camera": camera,
                "latest": latest,
                "taken": site_time(latest.started_at, site.timezone) if latest else "",
                "capacity": notes.get(camera.pk),
            }
        )
    return render(
        request,
        "cameras/camera_wall.html",
        {"site": site, "tiles": tiles, "refresh_seconds": WALL_REFRESH_SECONDS},
    )


@require_GET
@login_required
def camera_snapshot(request: HttpRequest, pk: int) -> FileResponse:
    """The camera's latest still (JPEG); 404 when it has no stored footage to show."""
    camera = scoped_or_404(
        cameras_visible_to(request.user),
        pk,
        request=request,
        action="camera_snapshot.view",
        details={"camera": pk},
        message="No such camera.",
    )
    candidates = _latest_segments(camera.pk, SNAPSHOT_TRIES)
    if not candidates:
        raise Http404("This camera has no stored footage yet.")
    blur = not may_view_unblurred(request.user)
    problem = ""
    for latest in candidates:
        try:
            name = snapshot_for(latest, blur=blur)
            break
        except SnapshotUnavailable as exc:
            problem = str(exc)
    else:
        raise Http404(problem)
    response = FileResponse(default_storage.open(name, "rb"), content_type="image/jpeg")
    # The picture changes with each new window: the browser asks again on every refresh.
    response["Cache-Control"] = "private, no-cache"
    response["X-Segment"] = str(latest.pk)
    return response


@require_GET
@login_required
def camera_recent(request: HttpRequest, pk: int) -> HttpResponse:
    """The camera's last minutes: its recent windows' working copies played in turn."""
    camera = scoped_or_404(
        cameras_visible_to(request.user),
        pk,
        request=request,
        action="camera_recent.view",
        details={"camera": pk},
        message="No such camera.",
    )
    since = timezone.now() - dt.timedelta(minutes=RECENT_MINUTES)
    segments = list(
        Segment.objects.filter(camera=camera, started_at__gte=since)
        .exclude(status=Segment.Status.PURGED)
        .exclude(original="")
        .order_by("-started_at")[:RECENT_MAX_SEGMENTS]
    )
    segments.reverse()
    audit_record(
        actor=request.user,
        action="camera_recent.view",
        target=camera,
        ip_address=client_ip(request),
        details={"segments": len(segments)},
    )
    zone = camera.site.timezone
    playlist = [
        {
            "url": reverse("segment-working-copy", args=[segment.pk]),
            "label": site_time(segment.started_at, zone),
        }
        for segment in segments
    ]
    return render(
        request,
        "cameras/camera_recent.html",
        {
            "camera": camera,
            "site": camera.site,
            "playlist": playlist,
            "minutes": RECENT_MINUTES,
        },
    )
