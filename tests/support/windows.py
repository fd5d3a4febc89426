"""A stored window made from a fixture clip, as ingestion would store it."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.clips import fixture_clips
from detection.models import Segment
from detection.pipeline import segment_create


def store_clip_window(
    camera: Any,
    start: dt.datetime,
    *,
    clip: Path | None = None,
    frames: np.ndarray | None = None,
) -> Segment:
    """A 2-s window of `camera` from `start` whose original is `clip` (default: the first
    fixture clip), with a motion score above the gate so it is queued for the model."""
    clip = clip or fixture_clips()[0]
    with tempfile.TemporaryDirectory() as folder:
        original = Path(folder) / "original.mp4"
        original.write_bytes(clip.read_bytes())
        return segment_create(
            camera_id=camera.pk,
            started_at=start,
            ended_at=start + dt.timedelta(seconds=2),
            source=Segment.Source.INGEST,
            original=original,
            preview_is_original=True,
            motion_score=0.05,
            frame_count=50,
            analysis_frames=frames,
        )
