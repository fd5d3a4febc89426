"""A real RTSP camera on loopback cut and restored: the reader reconnects by itself, and once
it has, windows follow each other without a hole (0 gaps after the reconnect)."""

from __future__ import annotations

import itertools
import sys
import time

import pytest
from django.utils import timezone

from cameras.models import Camera
from detection.ingest import ingest_manager
from detection.models import Segment
from tests.faults.conftest import wait_until
from tests.support.live import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.faults,
    pytest.mark.slow,
    pytest.mark.usefixtures("media_root", "purge_queues"),
]

WINDOWS_AFTER = 5
# Window edges are wall-clock times of frames: a hole shorter than a frame interval or two is
# timing noise, not lost footage.
TOLERANCE_SECONDS = 0.5


def test_camera_cut_and_back_reconnects_with_no_gap_after_the_reconnect(
    world, rtsp_server, fast_reconnect
):
    camera = world.camera_a
    Camera.objects.filter(pk=camera.pk).update(source_uri=rtsp_server.url, analysis_fps=5)
    windows = Segment.objects.filter(camera=camera)
    manager = ingest_manager()
    manager.sync()
    try:
        wait_for(lambda: windows.count() >= 2, timeout=60, what="windows before the cut")
        rtsp_server.stop()
        wait_for(
            lambda: Camera.objects.get(pk=camera.pk).status == Camera.Status.OFFLINE,
            timeout=30,
            what="the camera to go offline",
        )
        time.sleep(3)
        rtsp_server.start()
        back_at = timezone.now()
        took = wait_until(
            lambda: Camera.objects.get(pk=camera.pk).status == Camera.Status.ONLINE, timeout=30
        )
        assert Camera.objects.get(pk=camera.pk).status == Camera.Status.ONLINE, (
            f"camera not online {took:.0f} s after the stream came back"
        )
        wait_for(
            lambda: windows.filter(started_at__gte=back_at).count() >= WINDOWS_AFTER + 1,
            timeout=60,
            what=f"{WINDOWS_AFTER + 1} windows after the reconnect",
        )
    finally:
        manager.stop_all()
    after = list(
        windows.filter(started_at__gte=back_at)
        .order_by("started_at")
        .values_list("started_at", "ended_at")
    )
    holes = [
        round((nxt[0] - prev[1]).total_seconds(), 3)
        for prev, nxt in itertools.pairwise(after)
        if (nxt[0] - prev[1]).total_seconds() > TOLERANCE_SECONDS
    ]
    figure = (
        f"reconnected {took:.1f} s after the stream came back; {len(after)} windows after it, "
        f"{len(holes)} gaps over {TOLERANCE_SECONDS:g} s {holes}"
    )
    sys.stdout.write(f"FIGURE: {figure}\n")
    assert not holes, figure
