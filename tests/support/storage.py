from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from abusewatch.celery import app as celery_app
from cameras.models import Camera
from detection.models import Segment
from tests import factories


def footage_segment(
    camera: Camera,
    *,
    hours_old: float,
    status: str = Segment.Status.ANALYSED,
    size: int = 1000,
    original: bytes | None = None,
) -> Segment:
    """A segment that ended `hours_old` ago, with real original and preview files on disk."""
    ended = timezone.now() - dt.timedelta(hours=hours_old)
    content = original if original is not None else b"\x00\x00\x00\x18ftypmp42" + b"o" * size
    segment = factories.SegmentFactory(
        camera=camera,
        started_at=ended - dt.timedelta(seconds=2),
        ended_at=ended,
        status=status,
        original_sha256=hashlib.sha256(content).hexdigest(),
        original_size=len(content),
    )
    segment.original.save("clip.mp4", ContentFile(content), save=False)
    segment.preview.save("clip-preview.mp4", ContentFile(b"p" * size), save=True)
    return segment


@pytest.fixture
def media_root(settings, tmp_path: Path) -> Path:
    """A MEDIA_ROOT of each test's own, so storage usage and quotas count only its files."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Run queued tasks in this process (retries included, their countdown skipped): a
    stand-in for a worker, which test_healthz starts for real."""
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    # A retry runs the next attempt at once and then raises Retry; outcomes are checked on
    # the delivery rows instead.
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous
