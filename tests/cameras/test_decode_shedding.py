"""A reader behind its stream stops decoding and only records until it has caught up (issue
#14: 96 cameras on 2 cores left 2014 windows unstored because readers decoding everything fell
behind real time). The windows it did not decode are stored deferred, whole, and analysed from
their originals when the load allows."""

from __future__ import annotations

import time
from pathlib import Path

import av
import pytest
from django.db import connection

from bench.clips import encode_clip, fixture_clips
from cameras.ingest.decoding import DecodeOptions, DecodeShedder
from cameras.ingest.reader import CameraConfig, SessionWindow
from detection import backpressure, inference
from detection.models import Detection, Segment
from detection.pipeline import deferred_catch_up, store_ingested_window
from tests.conftest import World
from tests.support.reading import file_config, file_reader


def test_a_camera_s_own_constant_delay_is_not_the_reader_falling_behind():
    shedder = DecodeShedder(shed_after=2.0, resume_below=0.5)
    assert not any(shedder.update(now=t, due=t - 5.0) for t in range(100))


def test_a_reader_falling_behind_sheds_and_resumes_once_caught_up():
    shedder = DecodeShedder(shed_after=2.0, resume_below=0.5)
    lags = [0.0, 0.1, 0.0, 1.0, 1.9, 2.5, 3.0, 2.0, 1.0, 0.6, 0.4, 0.2, 0.0]
    seen = [shedder.update(now=10.0 + i, due=10.0 + i - lag) for i, lag in enumerate(lags)]
    assert seen == [False] * 5 + [True] * 5 + [False] * 3


def test_a_delay_that_stays_is_learnt_within_the_baseline():
    shedder = DecodeShedder(shed_after=2.0, resume_below=0.5, baseline_seconds=60)
    assert not shedder.update(now=0.0, due=0.0)
    assert shedder.update(now=1.0, due=1.0 - 3.0)  # 3 s late all at once: shed
    # The camera's delivery stays 3 s late: after the baseline, that is its normal.
    still = [shedder.update(now=t, due=t - 3.0) for t in range(2, 70)]
    assert still[0] and not still[-1]


def test_windows_waiting_to_be_stored_shed_decoding_though_the_stream_is_on_time():
    shedder = DecodeShedder(shed_after=2.0, resume_below=0.5)
    waited = [0.0, 1.0, 2.5, 4.0, 3.0, 1.0, 0.4, 0.0]
    seen = [shedder.update(now=t, due=t, storage_lag=lag) for t, lag in enumerate(waited)]
    assert seen == [False, False, True, True, True, True, False, False]


def test_shedding_is_off_at_zero():
    shedder = DecodeShedder(shed_after=0.0, resume_below=0.0)
    assert not shedder.update(now=100.0, due=0.0)


@pytest.fixture(scope="module")
def busy_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode_clip(fixture_clips(), tmp_path_factory.mktemp("shed") / "busy.mp4")


def read_with_a_stall(clip: Path, *, camera_id: int = 1, store: bool = False):
    """One pass over the clip; storing the first window takes 3 s (a CPU that falls behind),
    so the reader is 3 s behind its stream when it comes back."""
    config = file_config(clip, camera_id=camera_id)
    windows: list[SessionWindow] = []
    stored: list[int] = []

    def on_window(config: CameraConfig, closed: SessionWindow) -> None:
        windows.append(closed)
        if len(windows) == 1:
            time.sleep(3.0)
        if store:
            segment_id = store_ingested_window(config, closed)
            assert segment_id is not None
            stored.append(segment_id)

    reader = file_reader(
        config,
        on_window,
        decode_options=DecodeOptions(motion_gate=False, shed_after=2.0, shed_resume=0.5),
    )
    reader.play_once()
    return reader, windows, stored


def test_a_reader_behind_records_every_window_and_decodes_none_by_halves(busy_clip: Path):
    reader, windows, _ = read_with_a_stall(busy_clip)
    shed = [w for w in windows if w.shed]
    assert shed, "3 s behind its stream, the reader must stop decoding"
    assert reader.windows_shed == len(shed)
    assert reader.windows_still == 0, "a window shed for capacity is not a still scene"
    assert not windows[0].shed, "the window before the stall was decoded"
    # It caught up and decodes again: the last windows are analysed.
    assert not windows[-1].shed and len(windows[-1].window.frames) >= 2
    for closed in windows:
        if closed.shed:
            assert closed.window.frames == []
        elif closed is not windows[-1]:
            # Decoded whole: one analysis frame per tick of the 2-s window at 10 fps.
            assert len(closed.window.frames) == 20, closed.window.start
    # Every packet was recorded, shed or not (a window's original may repeat the keyframe
    # before its start, so windows can share packets).
    recorded = {record.dts for closed in windows for record in closed.window.packets}
    with av.open(str(busy_clip)) as container:
        in_file = {p.dts for p in container.demux(video=0) if p.size}
    assert recorded == in_file


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("media_root")
def test_a_shed_window_is_stored_deferred_and_analysed_from_its_original_later(
    world: World, busy_clip: Path, active_model, monkeypatch: pytest.MonkeyPatch, settings
) -> None:
    queued: list[int] = []
    monkeypatch.setattr("detection.pipeline.enqueue", lambda pk, frames: queued.append(pk))
    settings.MOTION_GATE_THRESHOLD = 0.0
    settings.INFERENCE_POSE_QUEUE = ""
    _, windows, stored = read_with_a_stall(busy_clip, camera_id=world.camera_a.pk, store=True)
    connection.close()
    segments = dict(Segment.objects.in_bulk(stored))
    shed_ids = [pk for closed, pk in zip(windows, stored, strict=True) if closed.shed]
    assert shed_ids
    for pk in shed_ids:
        segment = segments[pk]
        assert segment.status == Segment.Status.PENDING
        assert segment.deferred_at is not None and segment.motion_score is None
        assert pk not in queued, "not queued: idle time scores deferred windows"
        assert Path(segment.original.path).stat().st_size == segment.original_size > 0
    assert all(segments[pk].deferred_at is None for pk in stored if pk not in shed_ids)

    # Idle time (no fresh window waits): the deferred windows are scored from their originals.
    monkeypatch.setattr(backpressure, "fresh_work_waiting", lambda: False)
    assert all(inference.frames_get(pk) is None for pk in shed_ids)
    done = deferred_catch_up()
    assert {d.segment_id for d in done} >= set(shed_ids)
    assert Detection.objects.filter(segment_id__in=shed_ids).count() == len(shed_ids)
