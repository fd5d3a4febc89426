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
