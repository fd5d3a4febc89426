"""Through the ingest wiring (manager -> reader -> pipeline storage): a camera with a working
detect stream stores its main stream's footage; a camera whose detect stream is missing still
stores its windows, and its page says the detect stream is unavailable, in the reader's
language."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from django.urls import reverse
from django.utils import translation

from bench.clips import encode_clip, fixture_clips
from cameras.models import Camera
from cameras.status_details import DETECT_STREAM_UNAVAILABLE
from detection.ingest import ingest_manager
from detection.models import Segment
from tests.support.footage import client_as
from tests.support.live import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("detect-ingest")
    sources = fixture_clips()[:3]
    return (
        encode_clip(sources, folder / "main.mp4"),
        encode_clip(sources, folder / "detect.mp4", width=320, height=180),
    )


def test_windows_are_stored_with_or_without_the_detect_stream(
    world, footage, fast_reconnect, purge_queues, media_root, tmp_path
):
    main, detect = footage
    served, missing = world.camera_b, world.camera_a  # alice sees camera a
    Camera.objects.filter(pk=served.pk).update(source_uri=str(main), analysis_uri=str(detect))
    Camera.objects.filter(pk=missing.pk).update(
        source_uri=str(main), analysis_uri=str(tmp_path / "gone.mp4")
    )
    manager = ingest_manager()
    manager.sync()
    try:
        wait_for(
            lambda: all(
                Segment.objects.filter(camera=camera).count() >= 2 for camera in (served, missing)
            ),
            timeout=60,
            what="two windows from each camera",
        )
        lost = wait_for(
            lambda: Camera.objects.filter(
                pk=missing.pk, status="online", status_detail__startswith=DETECT_STREAM_UNAVAILABLE
            ).first(),
            timeout=20,
            what="the missing detect stream in the camera's status",
        )
        # The camera's page says so (while it runs: a stopped reader says it stopped).
        alice = client_as(world.alice)
        page = alice.get(reverse("camera-detail", args=[missing.pk])).text
        assert "the detect stream is unavailable" in page
        with translation.override("ko"):
            korean = alice.get(
                reverse("camera-detail", args=[missing.pk]), HTTP_ACCEPT_LANGUAGE="ko"
            ).text
        assert "감지용 스트림을 사용할 수 없어" in korean
        ok = Camera.objects.get(pk=served.pk)
        assert ok.status == "online" and not ok.status_detail.startswith(DETECT_STREAM_UNAVAILABLE)
    finally:
        manager.stop_all()

    assert "does not exist" in lost.status_detail
    for segment in Segment.objects.filter(camera__in=[served, missing]):
        with av.open(segment.original.path) as container:
            stream = container.streams.video[0]
            # The original is the main stream's, never the detect stream's.
            assert (stream.codec_context.width, stream.codec_context.height) == (640, 360)
        assert segment.frame_count > 0
