from __future__ import annotations

import datetime as dt
import http.server
import socket
import threading
import time
from pathlib import Path

import pytest
from django.urls import reverse

from cameras.models import Camera
from cameras.probe import ProbeFailure, probe_source
from detection.models import Band, ModelVersion
from detection.selectors import peak_scores_by_bucket
from tests import factories
from tests.conftest import World
from tests.support.footage import CLIPS, client_as

pytestmark = pytest.mark.django_db

GOOD = {
    "name": "Nap room",
    "source_uri": "rtsp://cam.local:554/stream",
    "enabled": "on",
    "analysis_fps": "8",
    "window_seconds": "2",
    "window_overlap_seconds": "0",
    "low_threshold": "",
    "high_threshold": "",
}


def test_admin_adds_and_edits_a_camera(world: World) -> None:
    alice = client_as(world.alice)
    url = reverse("camera-create", args=[world.site_a.pk])
    assert alice.get(url).status_code == 200
    response = alice.post(url, GOOD)
    assert response.status_code == 302
    camera = Camera.objects.get(site=world.site_a, name="Nap room")
    assert camera.source_uri == GOOD["source_uri"]
    edit = reverse("camera-edit", args=[camera.pk])
    # A centre admin may lower the low threshold below the active model's (never raise it).
    model_low = ModelVersion.objects.get(is_active=True).low_threshold
    lower = f"{model_low / 2:.4f}"
    assert (
        alice.post(
            edit, {**GOOD, "analysis_fps": "5", "low_threshold": lower, "high_threshold": "0.9"}
        ).status_code
        == 302
    )
    camera.refresh_from_db()
    assert camera.analysis_fps == 5 and camera.high_threshold == 0.9
    site_page = alice.get(reverse("site-detail", args=[world.site_a.pk])).text
    assert f'data-camera="{camera.pk}"' in site_page


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "Playroom A"}, "name"),  # already used at this site
        ({"name": "n" * 500}, "name"),
        ({"analysis_fps": "abc"}, "analysis_fps"),
        ({"analysis_fps": "1000"}, "analysis_fps"),
        ({"analysis_fps": "nan"}, "analysis_fps"),
        ({"window_seconds": "0.1"}, "window_seconds"),
        ({"window_overlap_seconds": "3"}, "window_overlap_seconds"),
        ({"low_threshold": "2"}, "low_threshold"),
        ({"low_threshold": "0.9", "high_threshold": "0.5"}, "low_threshold"),
        ({"source_uri": "ftp://nope"}, "source_uri"),
        ({"source_uri": "relative/path.mp4"}, "source_uri"),
        ({"source_uri": "x" * 5000}, "source_uri"),
    ],
)
def test_bad_camera_input_names_the_field(world: World, changes, field) -> None:
    alice = client_as(world.alice)
    before = Camera.objects.count()
    response = alice.post(reverse("camera-create", args=[world.site_a.pk]), {**GOOD, **changes})
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert Camera.objects.count() == before


def test_camera_name_with_html_is_shown_escaped(world: World) -> None:
    alice = client_as(world.alice)
    hostile = '<script>alert("x")</script>'
    alice.post(reverse("camera-create", args=[world.site_a.pk]), {**GOOD, "name": hostile})
    page = alice.get(reverse("site-detail", args=[world.site_a.pk])).text
    assert hostile not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_camera_pages_are_scoped(world: World) -> None:
    camera = world.camera_a
    urls = [
        reverse("camera-detail", args=[camera.pk]),
        reverse("camera-edit", args=[camera.pk]),
        reverse("camera-create", args=[world.site_a.pk]),
        reverse("site-detail", args=[world.site_a.pk]),
    ]
    for user in (world.bob, world.erin, world.lee, world.charlie):
        client = client_as(user)
        for url in urls:
            assert client.get(url).status_code in (403, 404), (user, url)
        assert client.post(urls[1], {**GOOD, "name": "taken"}).status_code in (403, 404)
        assert client.post(urls[2], GOOD).status_code in (403, 404)
    # Bob, an admin of another site, is told nothing exists (404), not "forbidden".
    assert client_as(world.bob).get(urls[0]).status_code == 404
    camera.refresh_from_db()
    assert camera.name == "Playroom A"
    assert not Camera.objects.filter(name="Nap room").exists()
    assert client_as(world.charlie).get(reverse("site-list")).status_code == 403


def test_day_timeline_in_the_site_time_zone(world: World) -> None:
    camera = world.camera_a
    version = factories.ModelVersionFactory()
    # 23:59:58 UTC on 1 Nov is 08:59:58 on 2 Nov in Seoul.
    late = dt.datetime(2026, 11, 1, 23, 59, 58, tzinfo=dt.UTC)
    for i, (score, band) in enumerate([(0.1, Band.SAFE), (0.95, Band.VIOLENT)]):
        segment = factories.SegmentFactory(
            camera=camera,
            started_at=late + dt.timedelta(hours=i),
            ended_at=late + dt.timedelta(hours=i, seconds=2),
        )
        factories.DetectionFactory(segment=segment, model_version=version, score=score, band=band)
    alice = client_as(world.alice)
    url = reverse("camera-detail", args=[camera.pk])
    page = alice.get(url, {"day": "2026-11-02"}).text
    assert page.count('class="bar bar-') == 2 and "bar-violent" in page
    assert 'id="no-scores"' in alice.get(url, {"day": "2026-11-01"}).text
    for bad in ("yesterday", "9999-99-99", "1900-01-01", "<script>"):
        response = alice.get(url, {"day": bad})
        assert response.status_code == 200 and "<script>" not in response.text.split("<main>")[1]


def test_day_peaks_keep_the_highest_score_of_each_bucket_and_only_this_camera(
    world: World,
) -> None:
    version = factories.ModelVersionFactory()
    start = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    rows = [  # (camera, seconds after start, score, band)
        (world.camera_a, 10, 0.2, Band.SAFE),
        (world.camera_a, 250, 0.7, Band.UNCERTAIN),  # same 300-s bucket as the one above
        (world.camera_a, 320, 0.1, Band.SAFE),
        (world.camera_a, -5, 0.99, Band.VIOLENT),  # the day before
        (world.camera_a, 86_400, 0.99, Band.VIOLENT),  # the next day
        (world.camera_b, 20, 0.99, Band.VIOLENT),  # another centre's camera
    ]
    for camera, offset, score, band in rows:
        began = start + dt.timedelta(seconds=offset)
        segment = factories.SegmentFactory(
            camera=camera, started_at=began, ended_at=began + dt.timedelta(seconds=2)
        )
        factories.DetectionFactory(segment=segment, model_version=version, score=score, band=band)
    peaks = peak_scores_by_bucket(world.camera_a, start, start + dt.timedelta(days=1), 300)
    assert [(p.index, p.score, p.band) for p in peaks] == [
        (0, 0.7, Band.UNCERTAIN),
        (1, 0.1, Band.SAFE),
    ]


# --- Test connection ---------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/secret"):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="cam"')
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html><body>" + b"not a video " * 2000 + b"</body></html>")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def silent_server():
    """Accepts connections and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(5)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/stream"
    sock.close()


def test_probe_names_each_kind_of_failure(http_server, silent_server, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("hello, not a video")
    cases = [
        ("ftp://camera/stream", ProbeFailure.BAD_URI),
        (f"http://127.0.0.1:{_closed_port()}/video", ProbeFailure.UNREACHABLE),
        ("rtsp://no-such-host.invalid/stream", ProbeFailure.UNREACHABLE),
        (f"{http_server}/secret", ProbeFailure.AUTH_REFUSED),
        (f"{http_server}/page", ProbeFailure.NOT_VIDEO),
        (str(text), ProbeFailure.NOT_VIDEO),
        (str(tmp_path / "missing.mp4"), ProbeFailure.NOT_FOUND),
    ]
    for uri, expected in cases:
        result = probe_source(uri, timeout=5)
        assert not result.ok and result.failure == expected, (uri, result)
    started = time.monotonic()
    result = probe_source(silent_server, timeout=2)
    assert result.failure == ProbeFailure.TIMEOUT, result
    assert time.monotonic() - started < 4
    good = probe_source(str(CLIPS / "fight" / "fi014.mp4"))
    assert good.ok and good.details["width"] > 0 and good.details["frames_decoded"] == 3


def test_test_connection_button_reports_without_saving(world: World, http_server, settings) -> None:
    # The test's camera server listens on loopback, which centre admins may not use otherwise.
    settings.CAMERA_SOURCE_BLOCKED_NETWORKS = []
    alice = client_as(world.alice)
    url = reverse("camera-create", args=[world.site_a.pk])
    response = alice.post(url, {**GOOD, "source_uri": f"{http_server}/secret", "probe": "1"})
    assert response.status_code == 200
    assert 'data-failure="auth_refused"' in response.text
    assert "Authentication refused" in response.text
    assert not Camera.objects.filter(name="Nap room").exists()
    # A file on the server's disk is an operator's source only; the admin is told so.
    refused = alice.post(
        url, {**GOOD, "source_uri": str(CLIPS / "fight" / "fi014.mp4"), "probe": "1"}
    )
    assert "Only an operator" in refused.text and "Connection works." not in refused.text
    ok = client_as(world.olga).post(
        url, {**GOOD, "source_uri": str(CLIPS / "fight" / "fi014.mp4"), "probe": "1"}
    )
    assert "Connection works." in ok.text
