"""Times in the site's zone with its abbreviation, the same on pages and in live messages."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse

from cameras.announce import camera_payload
from cameras.models import Camera, Site
from detection.payloads import case_payload
from portal.sitetime import site_time
from tests.conftest import World

MOMENT = dt.datetime(2026, 11, 30, 13, 34, 5, tzinfo=dt.UTC)


def test_a_time_reads_in_the_sites_zone_with_its_abbreviation():
    assert site_time(MOMENT, "Asia/Seoul") == "2026-11-30 22:34:05 KST"
    assert site_time(MOMENT, "Asia/Seoul", short=True) == "22:34:05 KST"
    assert site_time(MOMENT, "Europe/London") == "2026-11-30 13:34:05 GMT"


@pytest.mark.parametrize("zone", ["", "Mars/Olympus", "../../etc/passwd", "\x00"])
def test_a_blank_or_unknown_zone_reads_as_utc_not_an_error(zone):
    assert site_time(MOMENT, zone) == "2026-11-30 13:34:05 UTC"


def test_no_time_reads_empty():
    assert site_time(None, "Asia/Seoul") == ""


@pytest.mark.django_db
def test_live_messages_carry_the_time_exactly_as_the_page_renders_it(world: World):
    Site.objects.filter(pk=world.site_a.pk).update(timezone="Asia/Seoul")
    Camera.objects.filter(pk=world.camera_a.pk).update(last_frame_at=MOMENT)
    camera = Camera.objects.select_related("site").get(pk=world.camera_a.pk)
    assert camera_payload(camera)["last_frame_display"] == "2026-11-30 22:34:05 KST"
    case = world.uncertain_case_a
    case.refresh_from_db()
    shown = case_payload(case)["started_at_display"]
    assert shown.endswith(" KST")
    client = Client()
    client.force_login(world.alice)
    for language in ("en", "ko"):
        page = client.get(
            reverse("site-detail", args=[world.site_a.pk]), HTTP_ACCEPT_LANGUAGE=language
        )
        assert page.status_code == 200
        assert "2026-11-30 22:34:05 KST" in page.text  # the camera's last frame
        assert shown in page.text  # the case row, as the live row will show it
