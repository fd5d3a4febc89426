"""Input that used to crash the server with a 500 (issue #16 item 6): now a 400 or a clear form
error, naming what is wrong."""

from __future__ import annotations

import pytest
from django.urls import reverse

from cameras.models import Camera
from tests.conftest import World, api_as
from tests.support.footage import client_as

pytestmark = pytest.mark.django_db

# Brackets that open an IPv6 host but never close it, or enclose no address at all.
MALFORMED_HOSTS = ["http://[::1", "http://[zz]/", "rtsp://[::1:554/stream", "http://[]:80/"]


@pytest.mark.parametrize("site", ["9223372036854775808", "99999999999999999999999", "-1", "x"])
def test_review_queue_with_a_huge_or_bad_site_number_is_not_a_500(world: World, site) -> None:
    response = client_as(world.erin).get("/reviews/", {"site": site})
    assert response.status_code in {200, 400}
    assert response.status_code != 500


@pytest.mark.parametrize("uri", MALFORMED_HOSTS)
def test_api_create_with_a_malformed_bracketed_host_is_a_400(world: World, uri) -> None:
    response = api_as(world.alice).post(
        "/api/cameras/",
        {"site": world.site_a.pk, "name": "Hall", "source_uri": uri},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "malformed" in str(response.json()["source_uri"])
    assert not Camera.objects.filter(name="Hall").exists()


@pytest.mark.parametrize("uri", MALFORMED_HOSTS)
def test_api_patch_with_a_malformed_bracketed_host_is_a_400(world: World, uri) -> None:
    before = world.camera_a.source_uri
    response = api_as(world.alice).patch(
        f"/api/cameras/{world.camera_a.pk}/", {"source_uri": uri}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "malformed" in str(response.json()["source_uri"])
    world.camera_a.refresh_from_db()
    assert world.camera_a.source_uri == before


@pytest.mark.parametrize("uri", MALFORMED_HOSTS)
def test_form_probe_with_a_malformed_bracketed_host_says_so(world: World, uri) -> None:
    url = reverse("camera-create", args=[world.site_a.pk])
    response = client_as(world.alice).post(
        url,
        {
            "name": "Nap room",
            "source_uri": uri,
            "enabled": "on",
            "analysis_fps": "8",
            "window_seconds": "2",
            "window_overlap_seconds": "0",
            "probe": "1",
        },
    )
    assert response.status_code == 200
    assert "malformed" in response.text
    assert not Camera.objects.filter(name="Nap room").exists()
