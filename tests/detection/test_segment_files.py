from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from audit.models import AuditEvent
from tests import factories
from tests.conftest import World, api_as

pytestmark = pytest.mark.django_db


@pytest.fixture
def footage(world: World):
    segment = factories.SegmentFactory(camera=world.camera_a)
    segment.original.save("clip.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42original"), save=False)
    segment.preview.save(
        "clip-preview.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42preview"), save=True
    )
    world.uncertain_case_a.segments.add(segment)
    return segment


@pytest.mark.parametrize(
    ("username", "status"),
    [
        ("alice", 200),
        ("erin", 200),
        ("sam", 200),
        ("olga", 200),
        ("bob", 404),
        ("lee", 404),
        ("pat", 404),
        ("charlie", 404),
    ],
)
def test_footage_is_served_only_in_scope_and_audited(world: World, footage, username, status):
    user = getattr(world, username)
    response = api_as(user).get(f"/api/segments/{footage.pk}/original.mp4")
    assert response.status_code == status
    if status == 200:
        assert response.getvalue().endswith(b"original")
        assert response["Cache-Control"] == "private, no-store"
    outcome = "success" if status == 200 else "denied"
    assert AuditEvent.objects.filter(
        actor_label=username, action="segment.original.view", outcome=outcome
    ).exists()


def test_unknown_file_kind_and_missing_file_are_404(world: World, footage):
    client = api_as(world.alice)
    assert client.get(f"/api/segments/{footage.pk}/secret.mp4").status_code == 404
    footage.original.storage.delete(footage.original.name)
    assert client.get(f"/api/segments/{footage.pk}/original.mp4").status_code == 404
    assert client.get("/api/segments/999999/original.mp4").status_code == 404


def test_segment_list_is_scoped(world: World, footage):
    assert {row["id"] for row in api_as(world.bob).get("/api/segments/").json()["results"]} == set()
    assert {row["id"] for row in api_as(world.alice).get("/api/segments/").json()["results"]} == {
        footage.pk
    }
