"""Footage for portal tests: real MP4 clips as segment files, with detections for a timeline."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from detection.models import Band, Case, Segment
from tests import factories
from tests.conftest import World

CLIPS = Path(__file__).resolve().parents[1] / "fixtures" / "surveillance-fight"


def clip_bytes(name: str = "fight/fi014.mp4") -> bytes:
    return (CLIPS / name).read_bytes()


def attach_footage(case: Case, *, scores: tuple[float, ...] = (0.55, 0.62)) -> list[Segment]:
    """Give `case` one segment per score, with original and preview files and a detection,
    plus a safe neighbour window just before it."""
    version = factories.ModelVersionFactory()
    clips = sorted((CLIPS / "fight").glob("*.mp4"))
    segments = []
    start = case.started_at - dt.timedelta(seconds=2)
    neighbour = factories.SegmentFactory(
        camera=case.camera, started_at=start, ended_at=case.started_at
    )
    factories.DetectionFactory(segment=neighbour, model_version=version, score=0.1, band=Band.SAFE)
    for i, score in enumerate(scores):
        seg_start = case.started_at + dt.timedelta(seconds=2 * i)
        segment: Segment = factories.SegmentFactory(
            camera=case.camera, started_at=seg_start, ended_at=seg_start + dt.timedelta(seconds=2)
        )
        data = clips[i % len(clips)].read_bytes()
        segment.original.save(f"orig-{segment.pk}.mp4", ContentFile(data), save=False)
        segment.preview.save(f"prev-{segment.pk}.mp4", ContentFile(data), save=False)
        segment.original_size = len(data)
        import hashlib

        segment.original_sha256 = hashlib.sha256(data).hexdigest()
        segment.save()
        band = Band.VIOLENT if score >= 0.8 else Band.UNCERTAIN if score >= 0.3 else Band.SAFE
        factories.DetectionFactory(segment=segment, model_version=version, score=score, band=band)
        segments.append(segment)
    case.segments.add(*segments)
    case.ended_at = segments[-1].ended_at
    case.save(update_fields=["ended_at"])
    return segments


def shift_case(case: Case, *, hours: float) -> None:
    """Move a case in time, so the world's two cases of camera A do not share windows."""
    delta = dt.timedelta(hours=hours)
    Case.objects.filter(pk=case.pk).update(
        started_at=case.started_at + delta, ended_at=case.ended_at + delta
    )
    case.refresh_from_db()


@pytest.fixture
def footage(world: World) -> World:
    attach_footage(world.uncertain_case_a)
    shift_case(world.violent_case_a, hours=-1)
    attach_footage(world.violent_case_a, scores=(0.91, 0.97))
    return world


def client_as(user: object | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)  # type: ignore[arg-type]
    return client
