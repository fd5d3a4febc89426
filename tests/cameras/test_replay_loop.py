"""A replayed file (the demo camera, the bench's cameras) loops without a gap in its timeline.

Reopening the file for the next pass took 0.1-1.6 s on a loaded box (64 bench cameras): each
pass started its windows at "now", so every loop left a hole in the timeline that no camera
that never stops would show. The reopen is slowed here on purpose (a stand-in for the load).
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cameras.ingest import reader as reader_module
from cameras.ingest.reader import CameraConfig, CameraReader, SessionWindow
from ml.preprocess import InputSpec
from tests.cameras.test_reader_frames import slow_clip

SLOW_REOPEN_SECONDS = 0.4


def replayed_windows(clip: Path, count: int) -> list[SessionWindow]:
    spec = InputSpec()
    config = CameraConfig(
        camera_id=1,
        source_uri=str(clip),
        analysis_fps=spec.fps,
        window_seconds=1.0,
        window_overlap_seconds=0.0,
        frame_height=spec.height,
        frame_width=spec.width,
    )
    windows: list[SessionWindow] = []
    enough = threading.Event()

    def on_window(_: CameraConfig, window: SessionWindow) -> None:
        windows.append(window)
        if len(windows) >= count:
            enough.set()

    reader = CameraReader(config, on_window=on_window, on_status=lambda *_: None)
    reader.start()
    try:
        assert enough.wait(30), f"only {len(windows)} windows"
    finally:
        reader.stop()
        reader.join(10)
    return windows[:count]


@pytest.fixture
def slow_reopen(monkeypatch: Any) -> None:
    """Every open of the file after the first takes SLOW_REOPEN_SECONDS longer."""
    real_open = reader_module.open_container
    opened: list[float] = []

    def open_slowly(*args: Any, **kwargs: Any) -> Any:
        if opened:
            time.sleep(SLOW_REOPEN_SECONDS)
        opened.append(time.monotonic())
        return real_open(*args, **kwargs)

    monkeypatch.setattr(reader_module, "open_container", open_slowly)


def gaps(windows: list[SessionWindow]) -> list[float]:
    return [b.wall_start - a.wall_end for a, b in itertools.pairwise(windows)]


def test_the_next_pass_of_a_replayed_file_starts_where_the_last_one_ended(
    tmp_path: Path, slow_reopen: None
) -> None:
    # Two windows a pass: windows 2 and 4 open the second and third passes.
    clip = slow_clip(tmp_path / "loop.mp4", fps=10, seconds=2.0, options={"tune": "zerolatency"})
    windows = replayed_windows(clip, 5)
    assert [round(w.window.start, 3) for w in windows] == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert gaps(windows) == pytest.approx([0.0] * 4, abs=1e-6)
    # The slow reopen is caught up by reading faster than real time, not carried forward:
    # the last window's end is not in the future.
    assert windows[-1].wall_end <= time.time()


def test_a_pass_that_starts_long_after_the_last_one_starts_afresh(
    tmp_path: Path, slow_reopen: None, monkeypatch: Any
) -> None:
    # Resuming from far back would stamp a burst of windows with times long past.
    monkeypatch.setattr(reader_module, "REPLAY_RESUME_MAX_SECONDS", SLOW_REOPEN_SECONDS / 4)
    clip = slow_clip(tmp_path / "loop.mp4", fps=10, seconds=2.0, options={"tune": "zerolatency"})
    windows = replayed_windows(clip, 3)
    assert gaps(windows)[0] == pytest.approx(0.0, abs=1e-6)  # within one pass
    # The reopen began one frame step before the pass's last window was due to end.
    assert gaps(windows)[1] >= SLOW_REOPEN_SECONDS / 2  # the loop: a gap, honestly shown
