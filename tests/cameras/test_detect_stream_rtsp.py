"""A live camera with a detect stream, both real RTSP streams on loopback (GStreamer's server):
the 640x360 main stream is recorded without being decoded and the 320x180 detect stream gives
the analysis frames; when the detect stream's server dies the camera keeps recording, analyses
the main stream and says so; when it comes back the detect stream takes over again."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.clips import encode_clip, fixture_clips
from cameras.ingest.reader import CameraConfig, CameraReader, SessionWindow, StatusReport
from cameras.status_details import DETECT_STREAM_UNAVAILABLE, RECEIVING_VIDEO
from ml.preprocess import InputSpec
from tests.support.live import SYSTEM_PYTHON, RtspServer, wait_for

pytestmark = pytest.mark.slow

SPEC = InputSpec()


@pytest.fixture
def servers(long_clip: Path, tmp_path: Path) -> Iterator[tuple[RtspServer, RtspServer]]:
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.fail("Debian's GStreamer RTSP server is missing: run bin/setup (apt-packages.txt)")
    # The same footage as the main stream, at a quarter of its pixels.
    small = encode_clip(fixture_clips(), tmp_path / "detect.mp4", width=320, height=180, repeat=2)
    (tmp_path / "main").mkdir()
    (tmp_path / "detect").mkdir()
    main, detect = RtspServer(long_clip, tmp_path / "main"), RtspServer(small, tmp_path / "detect")
    main.start()
    detect.start()
    yield main, detect
    main.stop()
    detect.stop()


def test_the_detect_stream_feeds_analysis_and_its_loss_is_survived(servers):
    main, detect = servers
    windows: list[SessionWindow] = []
    reports: list[StatusReport] = []
    config = CameraConfig(
        camera_id=3,
        source_uri=main.url,
        analysis_fps=SPEC.fps,
        window_seconds=2.0,
        window_overlap_seconds=0.0,
        frame_height=SPEC.height,
        frame_width=SPEC.width,
        analysis_uri=detect.url.replace("rtsp://", "rtsp://viewer:s3cret@"),
    )
    reader = CameraReader(
        config,
        on_window=lambda _, window: windows.append(window),
        on_status=lambda _, report: reports.append(report),
        backoff_initial=0.5,
        backoff_max=1.0,
        read_timeout=3.0,
        status_interval=1.0,
    )
    reader.start()
    try:
        wait_for(lambda: len(windows) >= 3, timeout=40, what="three windows")
        feed = reader.detect_feed
        assert feed is not None and not feed.fallback
        assert feed.main_packets_decoded == 0 and feed.frames_from_detect > 0
        for window in windows[1:3]:
            assert (window.info.width, window.info.height) == (640, 360)
            # Frames from the detect stream, one per analysis tick (a frame or two short
            # where the live clocks meet).
            assert len(window.window.frames) >= 18
            assert all(f.shape == (SPEC.height, SPEC.width, 3) for f in window.window.frames)
        assert reports[-1].status == "online" and reports[-1].detail == RECEIVING_VIDEO

        detect.stop()
        wait_for(
            lambda: any(r.detail.startswith(DETECT_STREAM_UNAVAILABLE) for r in reports),
            timeout=20,
            what="the detect stream reported unavailable",
        )
        assert reader.detect_feed is feed and feed.unavailable is not None
        fallback_at = len(windows)
        wait_for(lambda: len(windows) >= fallback_at + 2, timeout=20, what="windows after")
        # Still recording, and analysed from the main stream.
        assert feed.main_packets_decoded > 0
        assert len(windows[-1].window.frames) >= 18
        unavailable = next(r for r in reports if r.detail.startswith(DETECT_STREAM_UNAVAILABLE))
        assert unavailable.status == "online"
        assert "s3cret" not in " ".join(r.detail for r in reports)

        detect.start()
        wait_for(lambda: not feed.fallback, timeout=30, what="the detect stream back")
        wait_for(
            lambda: reports[-1].detail == RECEIVING_VIDEO, timeout=10, what="the detail cleared"
        )
        decoded = feed.main_packets_decoded
        back_at = len(windows)
        wait_for(lambda: len(windows) >= back_at + 2, timeout=20, what="windows after return")
        assert feed.main_packets_decoded == decoded  # the main stream is only demuxed again
        assert len(windows[-1].window.frames) >= 18
    finally:
        reader.stop()
        reader.join(15)
    assert not reader.is_alive()
