"""A camera's detect stream (`analysis_uri`) is set through the camera form, the API and the
admin under the same rules as its source: hostile values are refused with the source's clear
errors (never a 500, nothing stored), a centre admin cannot aim it at the server's disk or
internal addresses, and a change restarts the camera's reader."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from audit.models import AuditEvent
from cameras.ingest.manager import IngestManager
from cameras.models import Camera
from ml.input_spec import InputSpec
from tests.conftest import World, api_as
from tests.support.footage import CLIPS, client_as

pytestmark = pytest.mark.django_db

MAIN = "rtsp://10.0.0.5:554/Streaming/Channels/101"
DETECT = "rtsp://10.0.0.5:554/Streaming/Channels/102"
CLIP = CLIPS / "fight" / "fi014.mp4"


def form_data(**overrides: str) -> dict[str, str]:
    return {
        "name": "Hall",
        "source_uri": MAIN,
        "analysis_uri": DETECT,
        "enabled": "on",
        "analysis_fps": "8",
        "window_seconds": "2",
        "window_overlap_seconds": "0",
        **overrides,
    }


def api_data(world: World, **overrides: str) -> dict[str, object]:
    return {
        "site": world.site_a.pk,
        "name": "Hall",
        "source_uri": MAIN,
        "analysis_uri": DETECT,
        **overrides,
    }


def test_a_centre_admin_sets_a_detect_stream_in_the_form_and_it_is_audited(world: World):
    alice = client_as(world.alice)
    page = alice.get(reverse("camera-create", args=[world.site_a.pk])).text
    assert 'name="analysis_uri"' in page and "Detect stream (optional)" in page
    assert "Footage is always recorded from the main source." in page
    response = alice.post(reverse("camera-create", args=[world.site_a.pk]), form_data())
    assert response.status_code == 302
    camera = Camera.objects.get(name="Hall")
    assert (camera.source_uri, camera.analysis_uri) == (MAIN, DETECT)

    edit = reverse("camera-edit", args=[camera.pk])
    assert DETECT in alice.get(edit).text  # the admin edits what they set
    assert alice.post(edit, form_data(analysis_uri="")).status_code == 302
    camera.refresh_from_db()
    assert camera.analysis_uri == ""
    change = AuditEvent.objects.filter(action="camera.update", object_id=str(camera.pk)).get()
    assert change.details["changed"] == ["analysis_uri"]


def test_the_form_speaks_korean(world: World):
    client = client_as(world.alice)
    with translation.override("ko"):
        page = client.get(
            reverse("camera-create", args=[world.site_a.pk]), HTTP_ACCEPT_LANGUAGE="ko"
        ).text
    assert "감지용 스트림" in page


def test_the_api_sets_and_shows_the_detect_stream(world: World):
    response = api_as(world.alice).post("/api/cameras/", api_data(world), format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["analysis_uri"] == DETECT
    camera_id = response.json()["id"]
    patch = api_as(world.alice).patch(
        f"/api/cameras/{camera_id}/", {"analysis_uri": ""}, format="json"
    )
    assert patch.status_code == 200 and patch.json()["analysis_uri"] == ""
    assert Camera.objects.get(pk=camera_id).analysis_uri == ""


HOSTILE = [
    ("ftp://camera/video", "Unsupported source type"),
    ("javascript:alert(document.cookie)", "Unsupported source type"),
    ("relative/path.mp4", "absolute path"),
    ("../../etc/shadow", "absolute path"),
    ("rtsp://cam\n.evil/", "control characters"),
    # The API's own field refuses NUL first ("Null characters are not allowed.").
    ("rtsp://cam\x00.evil/", "characters"),
    ("rtsp:///nohost", "needs a host"),
    ("http://[::1", "malformed"),
    ("x" * 1001, "1000"),
]


@pytest.mark.parametrize(("uri", "reason"), HOSTILE)
def test_hostile_detect_streams_are_refused_by_the_api(world: World, uri: str, reason: str):
    created = api_as(world.alice).post(
        "/api/cameras/", {**api_data(world), "analysis_uri": uri}, format="json"
    )
    assert created.status_code == 400, created.content
    assert reason in str(created.json()["analysis_uri"])
    Camera.objects.filter(pk=world.camera_a.pk).update(source_uri=MAIN)
    patched = api_as(world.alice).patch(
        f"/api/cameras/{world.camera_a.pk}/", {"analysis_uri": uri}, format="json"
    )
    assert patched.status_code == 400, patched.content
    assert reason in str(patched.json()["analysis_uri"])
    assert not Camera.objects.filter(name="Hall").exists()
    assert Camera.objects.get(pk=world.camera_a.pk).analysis_uri == ""


@pytest.mark.parametrize(("uri", "reason"), HOSTILE)
def test_hostile_detect_streams_are_refused_by_the_form(world: World, uri: str, reason: str):
    response = client_as(world.alice).post(
        reverse("camera-create", args=[world.site_a.pk]), form_data(analysis_uri=uri)
    )
    assert response.status_code == 400
    assert reason in response.text
    assert not Camera.objects.filter(name="Hall").exists()


SERVER_DISK = ["/etc/passwd", "file:///work/var/media/segments/2/clip.mp4", "/dev/video0"]
INTERNAL = ["rtsp://127.0.0.1:554/stream", "http://169.254.169.254/latest/", "rtsp://[::1]/s"]


@pytest.mark.parametrize("uri", SERVER_DISK + INTERNAL)
def test_a_centre_admin_cannot_aim_the_detect_stream_at_the_server(world: World, uri: str):
    reason = "Only an operator" if uri in SERVER_DISK else "internal addresses"
    page = client_as(world.alice).post(
        reverse("camera-create", args=[world.site_a.pk]), form_data(analysis_uri=uri)
    )
    assert page.status_code == 400 and reason in page.text
    api = api_as(world.alice).post(
        "/api/cameras/", {**api_data(world), "analysis_uri": uri}, format="json"
    )
    assert api.status_code == 400 and reason in str(api.json()["analysis_uri"])
    Camera.objects.filter(pk=world.camera_a.pk).update(source_uri=MAIN)
    patch = api_as(world.alice).patch(
        f"/api/cameras/{world.camera_a.pk}/", {"analysis_uri": uri}, format="json"
    )
    assert patch.status_code == 400 and "analysis_uri" in patch.json()
    # Its test button neither reads the disk nor connects: it says why at once.
    probe = client_as(world.alice).post(
        reverse("camera-create", args=[world.site_a.pk]),
        form_data(analysis_uri=uri, probe="analysis"),
    )
    assert 'data-failure="bad_uri"' in probe.text and reason in probe.text
    assert "does not exist" not in probe.text
    assert not Camera.objects.filter(name="Hall").exists()
    assert Camera.objects.get(pk=world.camera_a.pk).analysis_uri == ""


def test_a_detect_stream_needs_a_main_source(world: World):
    page = client_as(world.alice).post(
        reverse("camera-create", args=[world.site_a.pk]), form_data(source_uri="")
    )
    assert page.status_code == 400 and "needs a main source" in page.text
    api = api_as(world.alice).post(
        "/api/cameras/", {**api_data(world), "source_uri": ""}, format="json"
    )
    assert api.status_code == 400 and "needs a main source" in str(api.json()["analysis_uri"])
    # Removing the main source of a camera that has a detect stream is refused the same way.
    Camera.objects.filter(pk=world.camera_a.pk).update(source_uri=MAIN, analysis_uri=DETECT)
    patch = api_as(world.alice).patch(
        f"/api/cameras/{world.camera_a.pk}/", {"source_uri": ""}, format="json"
    )
    assert patch.status_code == 400 and "needs a main source" in str(patch.json())
    assert not Camera.objects.filter(name="Hall").exists()


def test_operators_may_use_a_file_detect_stream_and_test_it(world: World):
    olga = client_as(world.olga)
    url = reverse("camera-create", args=[world.site_a.pk])
    probe = olga.post(url, form_data(analysis_uri=str(CLIP), probe="analysis"))
    assert probe.status_code == 200
    assert "Connection works." in probe.text
    assert not Camera.objects.filter(name="Hall").exists()
    response = api_as(world.olga).post(
        "/api/cameras/",
        {**api_data(world), "source_uri": str(CLIP), "analysis_uri": str(CLIP)},
        format="json",
    )
    assert response.status_code == 201, response.json()


def test_the_test_button_of_the_detect_stream_tests_the_detect_stream(world: World):
    """The main source is fine; the detect stream's button reports the detect stream's fault."""
    response = client_as(world.olga).post(
        reverse("camera-create", args=[world.site_a.pk]),
        form_data(source_uri=str(CLIP), analysis_uri="/no/such/detect.mp4", probe="analysis"),
    )
    assert 'data-failure="not_found"' in response.text
    assert "/no/such/detect.mp4" in response.text


def test_the_admin_refuses_a_detect_stream_it_cannot_parse(world: World):
    from cameras.admin import CameraAdminForm

    camera = world.camera_a
    data = {
        "site": camera.site_id,
        "name": camera.name,
        "source_uri": MAIN,
        "analysis_uri": "javascript:alert(1)",
        "enabled": "on",
        "analysis_fps": "10",
        "window_seconds": "2",
        "window_overlap_seconds": "0",
        "status": "offline",
    }
    form = CameraAdminForm(data, instance=camera)
    assert not form.is_valid()
    assert "Unsupported source type" in str(form.errors["analysis_uri"])
    orphan = CameraAdminForm({**data, "source_uri": "", "analysis_uri": DETECT}, instance=camera)
    assert not orphan.is_valid() and "needs a main source" in str(orphan.errors)
    good = CameraAdminForm({**data, "analysis_uri": f" {DETECT} "}, instance=camera)
    assert good.is_valid(), good.errors
    assert good.cleaned_data["analysis_uri"] == DETECT


def test_a_new_detect_stream_restarts_the_camera_reader(world: World):
    Camera.objects.filter(pk=world.camera_a.pk).update(source_uri="/no/such/main.mp4")
    manager = IngestManager(on_window=lambda *_: None, frame_spec=InputSpec)
    manager.on_status = lambda *_: None
    try:
        manager.sync()
        before = manager.readers[world.camera_a.pk]
        assert before.config.analysis_uri == ""
        Camera.objects.filter(pk=world.camera_a.pk).update(analysis_uri=str(CLIP))
        manager.sync()
        after = manager.readers[world.camera_a.pk]
        assert after is not before and after.config.analysis_uri == str(CLIP)
        before.join(10)
        assert not before.is_alive()
    finally:
        manager.stop_all()


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_detect_streams_status_is_translated_and_keeps_its_reason(world: World, lang: str):
    """The reader stores the opening in English with the (redacted) reason after it; the page
    and the live rows' map translate the opening and keep the reason as it is."""
    import json

    from cameras.status_details import DETECT_STREAM_UNAVAILABLE

    reason = "Cannot read rtsp://***@10.0.0.5:554/detect: Connection refused"
    Camera.objects.filter(pk=world.camera_a.pk).update(
        status="online", status_detail=f"{DETECT_STREAM_UNAVAILABLE} {reason}"
    )
    opening = {
        "en": DETECT_STREAM_UNAVAILABLE,
        "ko": "영상 수신 중. 감지용 스트림을 사용할 수 없어 기본 스트림을 분석합니다:",
    }[lang]
    site = client_as(world.alice).get(
        reverse("site-detail", args=[world.site_a.pk]), HTTP_ACCEPT_LANGUAGE=lang
    )
    assert f'data-field="detail">{opening} {reason}<' in site.text
    labels = json.loads(site.text.split('id="status-labels"')[1].split(">", 1)[1].split("<")[0])
    assert labels["detail_opening"] == {DETECT_STREAM_UNAVAILABLE: opening}


def test_the_admin_page_edits_the_detect_stream(world: World):
    olga = client_as(world.olga)
    url = reverse("admin:cameras_camera_change", args=[world.camera_a.pk])
    page = olga.get(url)
    assert page.status_code == 200 and 'name="analysis_uri"' in page.text


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("en", "Analysed from its detect stream; recorded from its main source"),
        ("ko", "감지용 스트림으로 분석하고 기본 소스에서 녹화합니다"),
    ],
)
def test_the_camera_page_says_a_detect_stream_is_used_without_its_address(
    world: World, lang: str, said: str
):
    url = reverse("camera-detail", args=[world.camera_a.pk])
    alice = client_as(world.alice)
    assert 'id="detect-stream"' not in alice.get(url, HTTP_ACCEPT_LANGUAGE=lang).text
    Camera.objects.filter(pk=world.camera_a.pk).update(
        source_uri=MAIN, analysis_uri="rtsp://viewer:s3cret@10.0.0.5/detect"
    )
    page = alice.get(url, HTTP_ACCEPT_LANGUAGE=lang).text
    assert said in page
    assert "s3cret" not in page and "10.0.0.5" not in page
