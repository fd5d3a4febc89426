"""Real HTTP cameras on loopback: an MJPEG camera (multipart JPEGs, no timestamps of its own)
and an HLS playlist. Windows arrive, carry wall-clock times, and a cut stream takes the camera
offline with a reason."""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from django.utils import timezone
from PIL import Image

from cameras.ingest.manager import IngestManager
from cameras.models import Camera
from detection.ingest import ingest_manager
from detection.models import Segment
from tests.support.live import free_port, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MJPEG_FPS = 8  # well below the 25 fps FFmpeg assumes for a multipart stream


class _Server:
    """A ThreadingHTTPServer on a fixed port that can be stopped and started again."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self.handler = handler
        self.port = free_port()
        self.server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def _jpeg_frames(clip: Path, count: int) -> list[bytes]:
    frames = []
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            buffer = io.BytesIO()
            Image.fromarray(frame.to_ndarray(format="rgb24")).save(buffer, "JPEG", quality=80)
            frames.append(buffer.getvalue())
            if len(frames) == count:
                break
    return frames


@pytest.fixture
def mjpeg_camera(long_clip: Path) -> Iterator[_Server]:
    jpegs = _jpeg_frames(long_clip, 120)

    class MjpegHandler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            index = 0
            try:
                while camera.server is not None:
                    jpeg = jpegs[index % len(jpegs)]
                    self.wfile.write(
                        b"--frame\r\nContent-Type: image/jpeg\r\n"
                        + f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                        + jpeg
                        + b"\r\n"
                    )
                    index += 1
                    time.sleep(1 / MJPEG_FPS)
            except OSError:
                pass  # the reader hung up

        def log_message(self, *args: object) -> None:
            pass

    camera = _Server(MjpegHandler)
    camera.start()
    yield camera
    camera.stop()


@pytest.fixture
def hls_camera(long_clip: Path, tmp_path: Path) -> Iterator[_Server]:
    """The 32-s camera clip cut into 2-s HLS segments (no re-encoding) and served as files."""
    folder = tmp_path / "hls"
    folder.mkdir()
    with av.open(str(long_clip)) as source:
        video = source.streams.video[0]
        options = {"hls_time": "2", "hls_list_size": "0", "hls_playlist_type": "vod"}
        with av.open(str(folder / "index.m3u8"), "w", format="hls", options=options) as output:
            stream = output.add_stream_from_template(video)
            for packet in source.demux(video):
                if packet.dts is None:
                    continue
                packet.stream = stream
                output.mux(packet)
    assert len(list(folder.glob("*.ts"))) >= 8
    handler = functools.partial(_QuietFiles, directory=str(folder))
    camera = _Server(handler)  # type: ignore[arg-type]
    camera.start()
    yield camera
    camera.stop()


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _stored_windows(camera: Camera) -> list[Segment]:
    return list(Segment.objects.filter(camera=camera).order_by("started_at"))


def _assert_windows_follow_the_wall_clock(segments: list[Segment], since: dt.datetime) -> None:
    now = timezone.now()
    for segment in segments:
        # A stream read faster than real time, or one whose frames are numbered at an assumed
        # rate, would date its windows in the future or stretch them.
        assert since - dt.timedelta(seconds=1) <= segment.started_at < segment.ended_at
        assert segment.ended_at <= now + dt.timedelta(seconds=1)
        assert 1.0 <= segment.duration_seconds <= 4.0
        assert segment.frame_count > 0


def _ingest_three_windows(camera: Camera, url: str) -> tuple[IngestManager, dt.datetime]:
    Camera.objects.filter(pk=camera.pk).update(source_uri=url, analysis_fps=5)
    started = timezone.now()
    manager = ingest_manager()
    manager.sync()
    try:
        wait_for(
            lambda: len(_stored_windows(camera)) >= 3,
            timeout=60,
            what=f"three windows from {url}",
        )
    except BaseException:
        manager.stop_all()
        raise
    return manager, started


def test_mjpeg_camera_windows_are_timed_on_arrival(world, mjpeg_camera, fast_reconnect):
    camera = world.camera_a
    manager, started = _ingest_three_windows(
        camera, f"http://127.0.0.1:{mjpeg_camera.port}/video.mjpg"
    )
    try:
        camera.refresh_from_db()
        assert camera.status == Camera.Status.ONLINE
        # Measured on arrival: about the camera's real rate, not FFmpeg's assumed 25 fps.
        assert camera.measured_fps is not None and camera.measured_fps < 15

        mjpeg_camera.stop()
        wait_for(
            lambda: Camera.objects.get(pk=camera.pk).status == Camera.Status.OFFLINE,
            timeout=30,
            what="the MJPEG camera to go offline",
        )
        assert Camera.objects.get(pk=camera.pk).status_detail
    finally:
        manager.stop_all()

    segments = _stored_windows(camera)
    _assert_windows_follow_the_wall_clock(segments, started)
    for segment in segments:
        # JPEG packets are kept as sent (Matroska); browsers get an H.264 preview.
        assert (segment.original.name or "").endswith(".mkv")
        assert (segment.preview.name or "").endswith(".mp4")
        assert segment.preview.name != segment.original.name
        # About MJPEG_FPS frames a second of window, not 25.
        assert segment.frame_count <= segment.duration_seconds * MJPEG_FPS * 1.5 + 1
        with av.open(segment.preview.path) as preview:
            assert preview.streams.video[0].codec_context.name == "h264"


def test_hls_playlist_is_read_at_its_own_rate(world, hls_camera, fast_reconnect):
    camera = world.camera_a
    manager, started = _ingest_three_windows(
        camera, f"http://127.0.0.1:{hls_camera.port}/index.m3u8"
    )
    try:
        assert Camera.objects.get(pk=camera.pk).status == Camera.Status.ONLINE
        elapsed = (timezone.now() - started).total_seconds()
    finally:
        manager.stop_all()

    segments = _stored_windows(camera)
    _assert_windows_follow_the_wall_clock(segments, started)
    # Paced like a camera: 32 s of footage is not swallowed in the first seconds.
    covered = (segments[-1].ended_at - segments[0].started_at).total_seconds()
    assert covered <= elapsed + 1.0
    for segment in segments:
        assert (segment.original.name or "").endswith(".mp4")  # H.264 kept as is, playable as is
        assert segment.preview.name == segment.original.name
