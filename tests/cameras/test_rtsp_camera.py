"""A real RTSP camera on loopback (GStreamer's server): windows arrive, the stream is cut
mid-way, the camera goes offline with a reason, and comes back online when the stream does."""

from __future__ import annotations

import pytest
from django.conf import settings

from cameras.models import Camera
from detection.ingest import ingest_manager
from detection.models import Segment
from tests.support.live import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_rtsp_stream_cut_and_restored(world, rtsp_server, fast_reconnect, purge_queues, listen):
    camera = world.camera_a
    Camera.objects.filter(pk=camera.pk).update(source_uri=rtsp_server.url, analysis_fps=5)
    alice = listen(world.alice)
    manager = ingest_manager()
    manager.sync()
    try:
        wait_for(
            lambda: Segment.objects.filter(camera=camera).count() >= 2,
            timeout=60,
            what="two windows from the RTSP camera",
        )
        camera.refresh_from_db()
        assert camera.status == Camera.Status.ONLINE
        assert camera.measured_fps is None or camera.measured_fps > 5

        rtsp_server.stop()
        wait_for(
            lambda: Camera.objects.get(pk=camera.pk).status == Camera.Status.OFFLINE,
            timeout=30,
            what="the camera to go offline",
        )
        offline = Camera.objects.get(pk=camera.pk)
        assert "Disconnected" in offline.status_detail or "Cannot read" in offline.status_detail
        pushed = alice.wait(
            lambda m: m["type"] == "camera.status" and m["camera"]["status"] == "offline",
            timeout=10,
        )
        assert pushed["camera"]["status_detail"] == offline.status_detail
        assert manager.readers[camera.pk].is_alive()
        before = Segment.objects.filter(camera=camera).count()

        rtsp_server.start()
        wait_for(
            lambda: Camera.objects.get(pk=camera.pk).status == Camera.Status.ONLINE,
            timeout=30,
            what="the camera to come back online",
        )
        wait_for(
            lambda: Segment.objects.filter(camera=camera).count() >= before + 2,
            timeout=60,
            what="new windows after the reconnect",
        )
        # Disabling the camera stops its running reader at the next sync.
        reader = manager.readers[camera.pk]
        Camera.objects.filter(pk=camera.pk).update(enabled=False)
        manager.sync()
        assert camera.pk not in manager.readers
        reader.join(timeout=20)
        assert not reader.is_alive()
    finally:
        manager.stop_all()

    for segment in Segment.objects.filter(camera=camera):
        assert (segment.original.name or "").endswith(".mp4")
        assert segment.preview.name == segment.original.name
        assert 1.0 <= segment.duration_seconds <= settings.CASE_MERGE_GAP_SECONDS
        assert segment.frame_count > 0


def test_unreachable_and_malformed_sources_report_why(world, fast_reconnect, purge_queues):
    camera_a, camera_b = world.camera_a, world.camera_b
    Camera.objects.filter(pk=camera_a.pk).update(source_uri="rtsp://admin:s3cret@127.0.0.1:9/x")
    Camera.objects.filter(pk=camera_b.pk).update(source_uri="/no/such/folder")
    manager = ingest_manager()
    manager.sync()
    try:
        a = wait_for(
            lambda: (
                Camera.objects.filter(pk=camera_a.pk, status="offline")
                .exclude(status_detail="")
                .first()
            ),
            timeout=30,
            what="camera a offline",
        )
        b = wait_for(
            lambda: Camera.objects.filter(pk=camera_b.pk, status="error").first(),
            timeout=30,
            what="camera b in error",
        )
    finally:
        manager.stop_all()
    assert "Cannot read rtsp://***@127.0.0.1:9/x" in a.status_detail
    assert "s3cret" not in a.status_detail  # credentials never reach the portal
    assert "does not exist" in b.status_detail
    assert not Segment.objects.exists()
