"""A camera source cannot reach a blocked address through a redirect or an HLS playlist entry
(issue #16 item 1), neither through "test connection" nor through the running reader.

Loopback stands for both sides: 127.0.0.1 is the "allowed" camera host and 127.0.0.2 the
"blocked" internal service, with the policy's blocked set narrowed to 127.0.0.2 for the test.
The blocked server counts every request it gets: the figure asserted is 0.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from cameras.models import Camera
from cameras.probe import ProbeFailure, probe_source
from cameras.sources import HTTP_PROTOCOLS, SourceError, parse_source_uri
from tests.conftest import World
from tests.support.footage import CLIPS, client_as

CLIP = CLIPS / "fight" / "fi014.mp4"


class Server:
    def __init__(self, host: str, routes: dict[str, tuple[int, dict[str, str], bytes]]) -> None:
        self.hits: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(self.path)
                status, headers, body = outer.routes.get(self.path, (404, {}, b"no"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.routes = routes
        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def internal(settings) -> Iterator[Server]:
    """A service on a blocked address that a camera must never reach."""
    settings.CAMERA_SOURCE_BLOCKED_NETWORKS = ["127.0.0.2/32"]
    video = CLIP.read_bytes()
    server = Server(
        "127.0.0.2",
        {
            "/secret.mp4": (200, {"Content-Type": "video/mp4"}, video),
            "/seg0.ts": (200, {"Content-Type": "video/mp2t"}, video),
        },
    )
    yield server
    server.close()


@pytest.fixture
def camera_host(internal: Server) -> Iterator[Server]:
    playlist = (
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{internal.url}/seg0.ts\n#EXT-X-ENDLIST\n"
    ).encode()
    variant = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n/live.m3u8\n"
    keyed = (
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n"
        f'#EXT-X-KEY:METHOD=AES-128,URI="{internal.url}/key"\n#EXTINF:10,\nseg.ts\n'
    ).encode()
    local_file = f"#EXTM3U\n#EXTINF:10,\nfile://{CLIP}\n#EXT-X-ENDLIST\n".encode()
    server = Server(
        "127.0.0.1",
        {
            "/cam.mjpg": (302, {"Location": f"{internal.url}/secret.mp4"}, b""),
            "/hop.mjpg": (302, {"Location": "/cam.mjpg"}, b""),
            "/live.m3u8": (200, {"Content-Type": "application/vnd.apple.mpegurl"}, playlist),
            "/master.m3u8": (200, {"Content-Type": "application/vnd.apple.mpegurl"}, variant),
            "/keyed.m3u8": (200, {"Content-Type": "application/vnd.apple.mpegurl"}, keyed),
            "/local.m3u8": (200, {"Content-Type": "application/vnd.apple.mpegurl"}, local_file),
        },
    )
    yield server
    server.close()


PATHS = ["/cam.mjpg", "/hop.mjpg", "/live.m3u8", "/master.m3u8", "/keyed.m3u8"]


@pytest.mark.parametrize("path", PATHS)
def test_probe_refuses_a_hop_to_a_blocked_address(camera_host: Server, internal: Server, path):
    result = probe_source(camera_host.url + path, timeout=5)
    assert not result.ok
    assert result.failure == ProbeFailure.BAD_URI
    assert "blocked address" in result.message
    assert internal.hits == []  # the internal service was never reached


@pytest.mark.parametrize("path", PATHS)
def test_the_reader_refuses_a_hop_to_a_blocked_address(camera_host: Server, internal: Server, path):
    source = parse_source_uri(camera_host.url + path)
    with pytest.raises(SourceError, match="blocked address"):
        source.type.open(source.uri, timeout=5)
    assert internal.hits == []


def test_a_playlist_entry_outside_http_is_refused(camera_host: Server) -> None:
    result = probe_source(camera_host.url + "/local.m3u8", timeout=5)
    assert not result.ok and "leaves HTTP" in result.message


def test_ffmpeg_itself_may_not_open_a_file_entry(camera_host: Server, monkeypatch) -> None:
    """Even past the hop check (a playlist changed in between), FFmpeg's protocol list keeps an
    HTTP source from reading the server's disk."""
    import av

    assert "file" not in HTTP_PROTOCOLS.split(",") and "concat" not in HTTP_PROTOCOLS
    monkeypatch.setattr("cameras.sources.check_http_hops", lambda uri, **_: uri)
    source = parse_source_uri(camera_host.url + "/local.m3u8")
    with (
        pytest.raises(av.error.FFmpegError),
        source.type.open(source.uri, timeout=5) as container,
    ):
        next(container.decode(video=0))


@pytest.mark.django_db
def test_test_connection_button_refuses_the_redirect(
    world: World, camera_host: Server, internal: Server
) -> None:
    url = reverse("camera-create", args=[world.site_a.pk])
    response = client_as(world.alice).post(
        url,
        {
            "name": "Nap room",
            "source_uri": camera_host.url + "/cam.mjpg",
            "enabled": "on",
            "analysis_fps": "8",
            "window_seconds": "2",
            "window_overlap_seconds": "0",
            "probe": "1",
        },
    )
    assert response.status_code == 200
    assert "blocked address" in response.text
    assert internal.hits == []
    assert not Camera.objects.filter(name="Nap room").exists()


def test_a_direct_allowed_source_passes_the_hop_check(camera_host: Server, internal) -> None:
    from cameras.sources import check_http_hops

    camera_host.routes["/ok.mp4"] = (200, {"Content-Type": "video/mp4"}, Path(CLIP).read_bytes())
    assert check_http_hops(camera_host.url + "/ok.mp4", timeout=5) == camera_host.url + "/ok.mp4"
    # A redirect within allowed hosts is followed, and FFmpeg is handed its end.
    camera_host.routes["/moved"] = (302, {"Location": "/ok.mp4"}, b"")
    assert check_http_hops(camera_host.url + "/moved", timeout=5) == camera_host.url + "/ok.mp4"
    assert internal.hits == []
