"""The centre admins' camera wall and a camera's last minutes (issue #15, Deliver 7)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from audit.models import AuditEvent
from detection.models import Segment
from detection.retention import segment_purge
from tests.abusewatch.test_camera_wall_support import face_clip_bytes
from tests.conftest import World
from tests.support.storage import footage_segment

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

# Where scikit-image's astronaut (512 x 512, kept at its size) has her face: rows, columns.
FACE = (slice(80, 150), slice(185, 255))


@pytest.fixture(scope="module")
def face_clip() -> bytes:
    return face_clip_bytes()


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def jpeg_pixels(response: Any) -> np.ndarray:
    body = b"".join(response.streaming_content)
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB")).astype(int)


def test_admin_sees_a_tile_per_camera_with_a_blurred_still(world: World, face_clip) -> None:
    segment = footage_segment(world.camera_a, hours_old=0.01, original=face_clip)
    client = client_for(world.alice)
    page = client.get(reverse("camera-wall", args=[world.site_a.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Playroom A" in body and "Playroom B" not in body
    assert reverse("camera-snapshot", args=[world.camera_a.pk]) in body
    assert (
        reverse("camera-wall", args=[world.site_a.pk])
        in client.get(reverse("site-detail", args=[world.site_a.pk])).content.decode()
    )

    still = client.get(reverse("camera-snapshot", args=[world.camera_a.pk]))
    assert still.status_code == 200 and still["Content-Type"] == "image/jpeg"
    assert still["X-Segment"] == str(segment.pk)
    blurred = jpeg_pixels(still)
    # The operator may see faces; the admin's still has the face pixelated.
    plain = jpeg_pixels(
        client_for(world.olga).get(reverse("camera-snapshot", args=[world.camera_a.pk]))
    )
    assert blurred.shape == plain.shape
    assert np.abs(blurred[FACE] - plain[FACE]).mean() > 5
    assert np.abs(blurred[-60:, :60] - plain[-60:, :60]).mean() < 3


def test_the_still_follows_the_latest_window_and_old_stills_are_removed(
    world: World, face_clip, media_root
) -> None:
    client = client_for(world.alice)
    first = footage_segment(world.camera_a, hours_old=0.02, original=face_clip)
    assert client.get(reverse("camera-snapshot", args=[world.camera_a.pk]))["X-Segment"] == str(
        first.pk
    )
    folder = media_root / "snapshots" / f"camera-{world.camera_a.pk}"
    assert [p.name for p in folder.iterdir()] == [f"segment-{first.pk}-blurred.jpg"]
    second = footage_segment(world.camera_a, hours_old=0.01, original=face_clip)
    response = client.get(reverse("camera-snapshot", args=[world.camera_a.pk]))
    assert response["X-Segment"] == str(second.pk)
    assert [p.name for p in folder.iterdir()] == [f"segment-{second.pk}-blurred.jpg"]


def test_a_camera_without_footage_or_with_corrupt_footage_answers_404(world: World) -> None:
    client = client_for(world.alice)
    url = reverse("camera-snapshot", args=[world.camera_a.pk])
    assert client.get(url).status_code == 404  # no window stored yet
    footage_segment(world.camera_a, hours_old=0.01, original=b"not a video at all")
    assert client.get(url).status_code == 404  # corrupt: refused, not a 500
    page = client.get(reverse("camera-wall", args=[world.site_a.pk])).content.decode()
    assert "Playroom A" in page


def test_a_corrupt_latest_window_falls_back_to_the_one_before(world: World, face_clip) -> None:
    good = footage_segment(world.camera_a, hours_old=0.02, original=face_clip)
    footage_segment(world.camera_a, hours_old=0.01, original=b"truncated \x00\x00")
    response = client_for(world.alice).get(reverse("camera-snapshot", args=[world.camera_a.pk]))
    assert response.status_code == 200 and response["X-Segment"] == str(good.pk)


def test_the_other_side_gets_404_and_the_refusal_is_audited(world: World, face_clip) -> None:
    footage_segment(world.camera_a, hours_old=0.01, original=face_clip)
    for user in (world.bob, world.lee, world.erin, world.charlie):
        client = client_for(user)
        for url in (
            reverse("camera-wall", args=[world.site_a.pk]),
            reverse("camera-snapshot", args=[world.camera_a.pk]),
            reverse("camera-recent", args=[world.camera_a.pk]),
        ):
            assert client.get(url).status_code == 404, (user.username, url)
    assert AuditEvent.objects.filter(
        action="camera_snapshot.view", outcome=AuditEvent.Outcome.DENIED, actor=world.bob
    ).exists()


def test_last_minutes_plays_the_recent_windows_in_order(world: World, face_clip) -> None:
    old = footage_segment(world.camera_a, hours_old=1, original=face_clip)
    earlier = footage_segment(world.camera_a, hours_old=0.03, original=face_clip)
    later = footage_segment(world.camera_a, hours_old=0.01, original=face_clip)
    purged = footage_segment(world.camera_a, hours_old=0.02, original=face_clip)
    Segment.objects.filter(pk=purged.pk).update(status=Segment.Status.PURGED)
    response = client_for(world.alice).get(reverse("camera-recent", args=[world.camera_a.pk]))
    assert response.status_code == 200
    urls = [entry["url"] for entry in response.context["playlist"]]
    assert urls == [
        reverse("segment-working-copy", args=[earlier.pk]),
        reverse("segment-working-copy", args=[later.pk]),
    ]
    assert reverse("segment-working-copy", args=[old.pk]) not in response.content.decode()
    # The admin may open those working copies (their own site's footage).
    copy = client_for(world.alice).get(urls[0])
    assert copy.status_code == 200


def test_last_minutes_without_footage_says_so(world: World) -> None:
    response = client_for(world.alice).get(reverse("camera-recent", args=[world.camera_a.pk]))
    assert response.status_code == 200 and 'id="no-recent"' in response.content.decode()


def test_erasing_a_window_by_retention_erases_its_stills(
    world: World, face_clip, media_root
) -> None:
    segment = footage_segment(world.camera_a, hours_old=0.01, original=face_clip)
    assert client_for(world.alice).get(reverse("camera-snapshot", args=[world.camera_a.pk]))
    assert client_for(world.olga).get(reverse("camera-snapshot", args=[world.camera_a.pk]))
    folder = media_root / "snapshots" / f"camera-{world.camera_a.pk}"
    assert sorted(p.name for p in folder.iterdir()) == [
        f"segment-{segment.pk}-blurred.jpg",
        f"segment-{segment.pk}-original.jpg",
    ]
    assert segment_purge(segment_id=segment.pk, reason="test") is not None
    assert list(folder.iterdir()) == []
    still = client_for(world.alice).get(reverse("camera-snapshot", args=[world.camera_a.pk]))
    assert still.status_code == 404
