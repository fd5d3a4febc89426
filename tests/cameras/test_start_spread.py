"""Readers started together connect spread over one window, so their windows close a few at a
time instead of all in the same instant (cameras.ingest.manager.start_delays).

The bench's 32 cameras started in one instant closed 32 windows within about half a second of
each other every 2 s: the model took them as one burst, and the last of each burst waited for
all the others.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cameras.ingest import manager as manager_module
from cameras.ingest import reader as reader_module
from cameras.ingest.manager import IngestManager, start_delays
from cameras.ingest.reader import CameraConfig, CameraReader
from cameras.models import Camera
from ml.preprocess import InputSpec
from tests.cameras.test_reader_frames import first_window, slow_clip
from tests.conftest import World


def config(
    camera_id: int, *, window: float = 2.0, overlap: float = 0.0, uri: str = ""
) -> CameraConfig:
    spec = InputSpec()
    return CameraConfig(
        camera_id=camera_id,
        source_uri=uri or f"/no/such/camera-{camera_id}.mp4",
        analysis_fps=spec.fps,
        window_seconds=window,
        window_overlap_seconds=overlap,
        frame_height=spec.height,
        frame_width=spec.width,
    )


def test_readers_started_together_get_their_own_slots_across_shards() -> None:
    shard_0 = start_delays(
        [config(2), config(4), config(6), config(8)], shard_index=0, shard_count=2, spread=1.0
    )
    shard_1 = start_delays(
        [config(1), config(3), config(5), config(7)], shard_index=1, shard_count=2, spread=1.0
    )
    assert shard_0 == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert shard_1 == pytest.approx([0.25, 0.75, 1.25, 1.75])
    every = sorted(shard_0 + shard_1)
    # Eight slots a quarter of a window apart, all inside one window.
    assert every == pytest.approx([0.25 * slot for slot in range(8)])


def test_the_slot_follows_each_cameras_own_window_stride() -> None:
    # A 3-s window overlapping by 1 s starts a new window every 2 s.
    delays = start_delays(
        [config(1), config(2, window=3.0, overlap=1.0)], shard_index=0, shard_count=1, spread=1.0
    )
    assert delays == pytest.approx([0.0, 1.0])
    half = start_delays([config(1), config(2)], shard_index=0, shard_count=1, spread=0.5)
    assert half == pytest.approx([0.0, 0.5])


def test_a_reader_started_alone_or_with_the_spread_off_connects_at_once() -> None:
    assert start_delays([config(7)], shard_index=1, shard_count=2, spread=1.0) == [0.0]
    assert start_delays([config(1), config(2)], shard_index=0, shard_count=1, spread=0.0) == [
        0.0,
        0.0,
    ]
    assert start_delays([], shard_index=0, shard_count=1, spread=1.0) == []


def test_a_delayed_reader_connects_after_its_delay_and_its_windows_still_start_at_the_clip_start(
    tmp_path: Path,
) -> None:
    clip = slow_clip(tmp_path / "clip.mp4", fps=10, seconds=2.0, options={"tune": "zerolatency"})
    delay = 0.8
    started = time.time()
    window = first_window(clip, InputSpec(), window_seconds=1.0, start_delay=delay)
    # The window's wall clock begins once the reader has connected, after its delay ...
    assert window.wall_start >= started + delay
    # ... and it holds the clip from its start, as ml.evaluate cuts the same clip.
    assert window.window.start == pytest.approx(0.0)


def test_a_reader_stopped_while_it_waits_never_connects(monkeypatch: Any) -> None:
    opened: list[object] = []
    monkeypatch.setattr(reader_module, "open_container", lambda *a, **k: opened.append(a))
    statuses: list[str] = []
    exited = threading.Event()
    reader = CameraReader(
        config(1),
        on_window=lambda *_: None,
        on_status=lambda _c, report: statuses.append(report.status),
        on_exit=exited.set,
        start_delay=60.0,
    )
    reader.start()
    time.sleep(0.1)
    reader.stop()
    reader.join(5)
    assert not reader.is_alive(), "a stop must end the wait"
    assert opened == []
    assert exited.is_set()
    assert statuses == ["offline"]


class NotStarted(CameraReader):
    def start(self) -> None:  # the test reads the delays; nothing connects
        pass

    def is_alive(self) -> bool:
        return True


def test_the_manager_spreads_the_readers_it_starts_together_and_not_one_added_later(
    world: World, monkeypatch: Any, settings: Any
) -> None:
    settings.INGEST_START_SPREAD = 1.0
    monkeypatch.setattr(manager_module, "CameraReader", NotStarted)
    Camera.objects.update(
        source_uri="/no/such/main.mp4", window_seconds=2.0, window_overlap_seconds=0.0
    )
    manager = IngestManager(on_window=lambda *_: None, frame_spec=InputSpec)
    manager.sync()
    delays = sorted(reader.start_delay for reader in manager.readers.values())
    count = len(delays)
    assert count >= 2
    assert delays == pytest.approx([2.0 * slot / count for slot in range(count)])
    added = Camera.objects.create(
        site=world.site_a, name="Added later", source_uri="/no/such/new.mp4", window_seconds=2.0
    )
    manager.sync()
    assert manager.readers[added.pk].start_delay == 0.0
