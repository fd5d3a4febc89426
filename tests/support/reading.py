"""A camera reader over a file, as the tests drive one: not paced, with its own counters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cameras.ingest.decoding import DecodeOptions, IngestTotals
from cameras.ingest.reader import CameraConfig, CameraReader, SessionWindow


def file_config(
    source: Path | str,
    *,
    camera_id: int = 1,
    analysis_fps: float = 10.0,
    window_seconds: float = 2.0,
    overlap: float = 0.0,
) -> CameraConfig:
    return CameraConfig(
        camera_id=camera_id,
        source_uri=str(source),
        analysis_fps=analysis_fps,
        window_seconds=window_seconds,
        window_overlap_seconds=overlap,
        frame_height=64,
        frame_width=64,
    )


def file_reader(
    config: CameraConfig,
    on_window: Callable[[CameraConfig, SessionWindow], None],
    *,
    decode_options: DecodeOptions | None = None,
) -> CameraReader:
    """Read with `play_once()` (in the calling thread, as fast as it decodes); each closed
    window goes to `on_window` while its stream is open, as in the ingest process."""
    return CameraReader(
        config,
        on_window=on_window,
        on_status=lambda *_: None,
        decode_options=decode_options,
        paced=False,
        totals=IngestTotals(),
    )
