"""Storing a window with values no window can have: a clear error, and nothing left behind
(no row, no file). The store path checks these without a query; the database backs it up."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils import timezone

from bench.clips import fixture_clips
from detection.models import Segment
from detection.pipeline import segment_create
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def stored_files(media_root: Path) -> list[Path]:
    return [path for path in media_root.rglob("*") if path.is_file()]


def store(camera_id: int, start: dt.datetime, end: dt.datetime, folder: Path) -> Segment:
    original = folder / "original.mp4"
    original.write_bytes(fixture_clips()[0].read_bytes())
    return segment_create(
        camera_id=camera_id,
        started_at=start,
        ended_at=end,
        source=Segment.Source.INGEST,
        original=original,
        preview_is_original=True,
        motion_score=0.05,
    )


@pytest.mark.parametrize("length", [0.0, -2.0], ids=["empty-span", "ends-before-start"])
def test_a_window_that_does_not_end_after_it_starts_is_refused_by_name(
    world, settings, tmp_path, length
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    start = timezone.now()
    with pytest.raises(ValidationError) as refused:
        store(world.camera_a.pk, start, start + dt.timedelta(seconds=length), tmp_path)
    assert "ended_at" in refused.value.message_dict
    assert not Segment.objects.exists()
    assert stored_files(tmp_path / "media") == []


def test_a_window_of_a_camera_deleted_meanwhile_stores_nothing(world, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    camera = factories.CameraFactory(site=world.camera_a.site)
    gone = camera.pk
    camera.delete()
    start = timezone.now()
    with pytest.raises((IntegrityError, ValidationError)):
        store(gone, start, start + dt.timedelta(seconds=2), tmp_path)
    assert not Segment.objects.exists()
    assert stored_files(tmp_path / "media") == []


def test_a_valid_window_is_stored(world, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    start = timezone.now()
    segment = store(world.camera_a.pk, start, start + dt.timedelta(seconds=2), tmp_path)
    assert Segment.objects.get() == segment
    assert len(stored_files(tmp_path / "media")) == 1
