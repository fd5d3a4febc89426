"""The detect stream is opened under the main source's network rules: a redirect or playlist
entry to a blocked address is refused (the internal service is never reached) and the camera
records on, analysing its main stream; a detect stream that stalls hands over the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.clips import encode_clip, fixture_clips
from cameras.ingest.analysis_stream import DetectFeed
from cameras.sources import parse_source_uri
from cameras.status_details import DETECT_STREAM_UNAVAILABLE
from tests.cameras.test_detect_stream import Run

# The loopback "camera host" and the blocked "internal service" of the main source's tests.
from tests.outsiders.test_camera_ssrf import Server, camera_host, internal  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def main_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode_clip(fixture_clips()[:2], tmp_path_factory.mktemp("policy") / "main.mp4")


@pytest.mark.parametrize("path", ["/cam.mjpg", "/live.m3u8"])
def test_a_detect_stream_cannot_reach_a_blocked_address(
    main_clip: Path, request: pytest.FixtureRequest, path: str
) -> None:
    host: Server = request.getfixturevalue("camera_host")
    blocked: Server = request.getfixturevalue("internal")
    run = Run(main_clip, host.url + path).play_once()

    assert len(run.windows) == 2  # recorded and analysed from the main stream
    assert all(len(w.window.frames) >= 10 for w in run.windows)
    details = " ".join(r.detail for r in run.reports)
    assert DETECT_STREAM_UNAVAILABLE in details and "blocked address" in details
    assert blocked.hits == []


class StalledStream:
    """A detect stream that delivered a frame once and then nothing more, without closing."""

    packets_read = frames_decoded = 1
    failure = None
    ended = False
    finished = False
    progress = 0.0

    def __init__(self) -> None:
        self.stopped = False

    def wait_past(self, seconds: float, timeout: float) -> bool:
        return seconds <= self.progress

    def take(self, before: float = float("inf")) -> list[object]:
        return []

    def stop(self) -> None:
        self.stopped = True


def test_a_stalled_detect_stream_hands_over_to_the_main_stream() -> None:
    told: list[str | None] = []
    feed = DetectFeed(
        "rtsp://10.0.0.5/detect",
        main=parse_source_uri("rtsp://10.0.0.5/main"),
        clip_index=0,
        fps=10.0,
        convert=lambda frame: frame,
        on_unavailable=told.append,
        read_timeout=0.1,
        backoff_initial=60.0,
        backoff_max=60.0,
        name="camera-1",
    )
    stalled = StalledStream()
    feed.stream = stalled  # type: ignore[assignment]
    feed.epoch_mono = 0.0
    frames: list[float] = []

    def add_frame(seconds: float, image: object, *, ticks: object = None) -> None:
        frames.append(seconds)

    assert feed.before_packet(0.0, True, add_frame) is False  # served: the main is not decoded
    assert feed.before_packet(0.04, False, add_frame) is False  # fell behind: from a keyframe
    assert feed.fallback and stalled.stopped and feed.stream is None
    assert told[-1] is not None and "fell more than 0.1 s behind" in told[-1]
    assert feed.before_packet(0.08, False, add_frame) is False
    assert feed.before_packet(0.12, True, add_frame) is True  # the next keyframe is decoded
    assert feed.before_packet(0.16, False, add_frame) is True
    assert feed.main_packets_decoded == 2
