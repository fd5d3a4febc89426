"""What the ingestion process does with a closed window and with a reader's status."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from pathlib import Path

import numpy as np

from cameras.ingest.media import MediaError, remux_packets, safe_unlink, transcode_preview
from cameras.ingest.reader import CameraConfig, SessionWindow, StatusReport

logger = logging.getLogger(__name__)


def _when(wall: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(wall, tz=dt.UTC)


def store_window(config: CameraConfig, closed: SessionWindow) -> int | None:
    """Write the window's original (and preview if needed) and record its Segment."""
    from django.conf import settings

    from cameras.ingest.media import motion_score
    from detection.models import Segment
    from detection.services import segment_create

    window, info = closed.window, closed.info
    with tempfile.TemporaryDirectory(prefix="abusewatch-window-") as folder:
        original = Path(folder) / f"original{info.original_suffix}"
        remux_packets(window.packets, info, original)
        preview: Path | None = None
        if not info.browser_playable:
            preview = Path(folder) / "preview.mp4"
            try:
                transcode_preview(original, preview, fps=settings.PREVIEW_TRANSCODE_FPS)
            except MediaError:
                logger.exception("camera %s: no preview for this window", config.camera_id)
                safe_unlink(preview)
                preview = None
        frames = np.stack(window.frames)
        segment = segment_create(
            camera_id=config.camera_id,
            started_at=_when(closed.wall_start),
            ended_at=_when(closed.wall_end),
            source=Segment.Source.INGEST,
            original=original,
            preview=preview,
            preview_is_original=info.browser_playable,
            motion_score=motion_score(window.frames),
            frame_count=window.source_frames,
            analysis_frames=frames,
        )
    return segment.pk if segment is not None else None


def store_status(config: CameraConfig, report: StatusReport) -> None:
    from cameras.services import camera_set_status

    camera_set_status(
        camera_id=config.camera_id,
        status=report.status,
        detail=report.detail,
        last_frame_at=_when(report.last_frame_wall) if report.last_frame_wall else None,
        measured_fps=report.measured_fps,
    )
