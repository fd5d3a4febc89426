"""The centre admin's site page: a switched-off camera is not offline; thresholds are shown."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from cameras.models import Camera
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
