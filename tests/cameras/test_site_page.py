"""The centre admin's site page: a switched-off camera is not offline; thresholds are shown."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from cameras.models import Camera
from cameras.status_details import INGESTION_STOPPED, RECEIVING_VIDEO
from tests import factories
from tests.conftest import World

pytestmark = pytest.mark.django_db


def test_a_switched_off_camera_is_not_counted_or_shown_as_offline(world: World) -> None:
    factories.ModelVersionFactory(is_active=True, low_threshold=0.3, high_threshold=0.8)
    Camera.objects.filter(pk=world.camera_a.pk).update(status="online", enabled=True)
    off = Camera.objects.create(site=world.site_a, name="Nap room", enabled=False)
    client = Client()
    client.force_login(world.alice)
    listing = client.get(reverse("site-list")).text
    enabled = Camera.objects.filter(site=world.site_a, enabled=True).count()
    assert f"1 / {enabled}" in listing and "(+1 switched off)" in listing
    page = client.get(reverse("site-detail", args=[world.site_a.pk])).text
    row = page.split(f'data-camera="{off.pk}"')[1].split("</tr>")[0]
    assert "Switched off" in row and "Offline" not in row
    # The thresholds in force: the model's, or the camera's own where it sets them.
    Camera.objects.filter(pk=world.camera_a.pk).update(low_threshold=0.4, high_threshold=0.9)
    page = client.get(reverse("site-detail", args=[world.site_a.pk])).text
    own = page.split(f'data-camera="{world.camera_a.pk}"')[1].split("</tr>")[0]
    assert "0.40 / 0.90" in own and "this camera's" in own
    assert "0.30 / 0.80" in row and "the model's" in row


def test_the_day_timeline_marks_each_case_wide_enough_to_see_and_click(world: World) -> None:
    import zoneinfo

    case = world.uncertain_case_a
    day = case.started_at.astimezone(zoneinfo.ZoneInfo(world.site_a.timezone)).date()
    client = Client()
    client.force_login(world.alice)
    page = client.get(
        reverse("camera-detail", args=[case.camera_id]), {"day": f"{day:%Y-%m-%d}"}
    ).text
    marker = page.split(f'class="incident-marker" data-case="{case.pk}"')[1].split("</a>")[0]
    width = float(marker.split('width="')[1].split('"')[0])
    assert width >= 6.0  # at least 0.6 % of the day, however short the case
    assert f'href="/sites/cases/{case.pk}/"' in page


@pytest.mark.parametrize(
    ("lang", "receiving", "stopped"),
    [
        ("en", "Receiving video.", "Ingestion stopped for this camera."),
        ("ko", "영상을 받고 있습니다.", "이 카메라의 영상 수집이 멈췄습니다."),
    ],
)
def test_a_cameras_fixed_health_details_read_in_the_readers_language(
    world: World, lang: str, receiving: str, stopped: str
) -> None:
    """The reader stores them in English (it has no reader); pages and live rows translate
    them (issue #15: `Receiving video.` was shown untranslated). An error's own text stays."""
    client = Client()
    client.force_login(world.alice)
    Camera.objects.filter(pk=world.camera_a.pk).update(
        status="online", status_detail=RECEIVING_VIDEO
    )
    site = client.get(reverse("site-detail", args=[world.site_a.pk]), HTTP_ACCEPT_LANGUAGE=lang)
    assert f'data-field="detail">{receiving}<' in site.text
    camera = client.get(
        reverse("camera-detail", args=[world.camera_a.pk]), HTTP_ACCEPT_LANGUAGE=lang
    )
    assert f'data-field="detail">{receiving}<' in camera.text
    # The live rows' map: the stored English to the page's language.
    labels = json.loads(site.text.split('id="status-labels"')[1].split(">", 1)[1].split("<")[0])
    assert labels["detail"] == {RECEIVING_VIDEO: receiving, INGESTION_STOPPED: stopped}
    Camera.objects.filter(pk=world.camera_a.pk).update(
        status="offline", status_detail="Cannot read rtsp://cam: Connection refused"
    )
    site = client.get(reverse("site-detail", args=[world.site_a.pk]), HTTP_ACCEPT_LANGUAGE=lang)
    assert "Cannot read rtsp://cam: Connection refused" in site.text
