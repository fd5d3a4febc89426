"""A centre admin's camera form and its test-connection button never touch the server's disk."""

from __future__ import annotations

import pytest
from django.test import Client

from cameras.models import Camera
from tests.conftest import World

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form_data(**overrides):
    return {
        "name": "Hall",
        "source_uri": "rtsp://10.0.0.9/stream",
        "enabled": "on",
        "analysis_fps": "8",
        "window_seconds": "2",
        "window_overlap_seconds": "0",
        **overrides,
    }


def test_admin_form_refuses_a_file_source(world: World):
    response = logged_in(world.alice).post(
        f"/sites/{world.site_a.pk}/cameras/new/", form_data(source_uri="/etc/passwd")
    )
    assert response.status_code == 400
    assert "Only an operator" in response.content.decode()
    assert not Camera.objects.filter(name="Hall").exists()


def test_probe_does_not_reveal_whether_a_path_exists(world: World):
    client = logged_in(world.alice)
    url = f"/sites/{world.site_a.pk}/cameras/new/"
    existing = client.post(url, form_data(source_uri="/etc/passwd", probe="1")).content.decode()
    missing = client.post(
        url, form_data(source_uri="/no/such/file.mp4", probe="1")
    ).content.decode()
    assert "Only an operator" in existing and "Only an operator" in missing
    assert "does not exist" not in existing + missing


INTERNAL_SOURCES = [
    "rtsp://127.0.0.1:554/stream",
    "http://localhost:6379/",
    "http://169.254.169.254/latest/meta-data/",
    "rtsp://[::1]/stream",
    "http://[::ffff:127.0.0.1]:8000/",
    "http://2130706433/",  # 127.0.0.1 written as one number
    "http://0.0.0.0:8000/",
    "rtsp://224.0.0.1/stream",
]


@pytest.mark.parametrize("source", INTERNAL_SOURCES)
def test_admins_cannot_aim_a_camera_at_the_servers_own_addresses(world: World, source):
    from tests.conftest import api_as

    page = logged_in(world.alice).post(
        f"/sites/{world.site_a.pk}/cameras/new/", form_data(source_uri=source)
    )
    assert page.status_code == 400 and "internal addresses" in page.content.decode()
    api = api_as(world.alice).patch(
        f"/api/cameras/{world.camera_a.pk}/", {"source_uri": source}, format="json"
    )
    assert api.status_code == 400 and "source_uri" in api.json()
    # The test button does not connect either: it cannot serve to map open ports.
    probe = logged_in(world.alice).post(
        f"/sites/{world.site_a.pk}/cameras/new/", form_data(source_uri=source, probe="1")
    )
    assert 'data-failure="bad_uri"' in probe.content.decode()
    assert "internal addresses" in probe.content.decode()
    assert not Camera.objects.filter(name="Hall").exists()


def test_lan_cameras_stay_allowed_and_operators_are_not_limited(world: World):
    lan = logged_in(world.alice).post(
        f"/sites/{world.site_a.pk}/cameras/new/",
        form_data(source_uri="rtsp://192.168.1.64:554/Streaming/Channels/101"),
    )
    assert lan.status_code == 302
    operator = logged_in(world.olga).post(
        f"/sites/{world.site_a.pk}/cameras/new/",
        form_data(name="Loopback", source_uri="rtsp://127.0.0.1:8554/demo"),
    )
    assert operator.status_code == 302
    assert Camera.objects.filter(name="Loopback", source_uri="rtsp://127.0.0.1:8554/demo").exists()
