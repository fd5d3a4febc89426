"""The camera reader with its motion gate, over real file sources: a still scene is stored
without being decoded (as skipped windows, originals intact), busy footage is decoded whole,
and a fight that starts in a still scene loses no frame to the gate."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from django.db import connection

from bench.clips import FIXTURES, encode_clip, encode_still_clip, fixture_clips
from cameras.ingest.decoding import DecodeOptions
from cameras.ingest.reader import CameraConfig, CameraReader, SessionWindow
from detection.models import Segment
from detection.pipeline import store_ingested_window
from tests.conftest import World
from tests.support.reading import file_config, file_reader

VIOLENT = sorted((FIXTURES / "fight").glob("*.mp4"))


def read(
    clip: Path, *, gate: bool, camera_id: int = 1, store: bool = False, overlap: float = 0.0
) -> tuple[CameraReader, list[SessionWindow], list[int]]:
    """One pass over the clip as fast as it decodes; `store`: each window through the ingest
    command's callback, while the stream is open as in production."""
    config = file_config(clip, camera_id=camera_id, overlap=overlap)
    windows: list[SessionWindow] = []
    stored: list[int] = []

    def on_window(config: CameraConfig, closed: SessionWindow) -> None:
        windows.append(closed)
        if store:
            segment_id = store_ingested_window(config, closed)
            assert segment_id is not None
            stored.append(segment_id)

    reader = file_reader(config, on_window, decode_options=DecodeOptions(motion_gate=gate))
    reader.play_once()
    return reader, windows, stored


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("gate-clips")
    return {
        "still": encode_still_clip(folder / "still.mp4", seconds=20),
        "busy": encode_clip(fixture_clips(), folder / "busy.mp4"),
    }


def packet_bytes(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [bytes(p) for p in container.demux(stream) if p.size]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("media_root")
def test_a_still_scene_is_stored_undecoded_as_skipped_windows(
    world: World, clips, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[int] = []
    # The decoded first windows would go to the inference queue: left out of the broker.
    monkeypatch.setattr("detection.pipeline.enqueue", lambda pk, frames: queued.append(pk))
    reader, windows, stored = read(
        clips["still"], gate=True, camera_id=world.camera_a.pk, store=True
    )
    connection.close()
    assert reader.windows_emitted == 10 and len(stored) == 10
    # Decoded until the pixels proved the scene still (2 s) and motion had been absent for the
    # hold (4 s), to the next window: the rest was never decoded.
    assert reader.frames_not_decoded >= 250
    assert reader.frames_decoded + reader.frames_not_decoded == 500
    assert reader.windows_still >= 5
    segments = {s.pk: s for s in Segment.objects.filter(pk__in=stored)}
    still = [
        (w, segments[pk]) for w, pk in zip(windows, stored, strict=True) if not w.window.frames
    ]
    assert len(still) == reader.windows_still
    # The windows decoded while the gate learnt are still too: the segment gate skips them.
    assert not queued
    assert all(s.status == Segment.Status.SKIPPED for s in segments.values())
    for closed, segment in still:
        assert segment.status == Segment.Status.SKIPPED
        assert segment.pk not in queued
        assert segment.motion_score == 0.0
        assert segment.frame_count == 50  # the frames the camera sent, decoded or not
        # The original is the camera's bitstream, byte for byte, and plays on its own.
        original = Path(segment.original.path)
        assert packet_bytes(original) == [p.data for p in closed.window.packets]
        with av.open(str(original)) as container:
            assert sum(1 for _ in container.decode(video=0)) == len(closed.window.packets)


def test_busy_footage_is_decoded_whole(clips) -> None:
    gated, windows, _ = read(clips["busy"], gate=True)
    _, reference, _ = read(clips["busy"], gate=False)
    assert gated.frames_not_decoded == 0 and gated.windows_still == 0
    assert len(windows) == len(reference)
    for got, want in zip(windows, reference, strict=True):
        assert len(got.window.frames) == len(want.window.frames) >= 19
        for a, b in zip(got.window.frames, want.window.frames, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("fight", VIOLENT, ids=lambda p: p.stem)
def test_a_fight_that_starts_in_a_still_scene_loses_no_window(tmp_path: Path, fight: Path):
    """10 s of the fight's own first frame with sensor noise (the room before anyone moves;
    the gate has stopped decoding), then the fight from that frame on, so motion starts in the
    same scene, not with a cut: every window from the fight's start is decoded as without the
    gate, frame for frame."""
    clip = encode_still_clip(
        tmp_path / "still-then-fight.mp4", seconds=10, background=fight, then=[fight]
    )
    gated, windows, _ = read(clip, gate=True)
    _, reference, _ = read(clip, gate=False)
    assert gated.frames_not_decoded > 0, "the gate was not engaged when the fight began"
    assert [w.window.start for w in windows] == [w.window.start for w in reference]
    fight_windows = [
        (got, want) for got, want in zip(windows, reference, strict=True) if want.window.end > 10.0
    ]
    assert fight_windows
    for got, want in fight_windows:
        assert not got.undecoded
        assert len(got.window.frames) == len(want.window.frames) >= 2
        for a, b in zip(got.window.frames, want.window.frames, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("clip", fixture_clips(), ids=lambda p: p.stem)
def test_the_fixture_clips_lose_no_window_to_the_gate(clip: Path) -> None:
    _, windows, _ = read(clip, gate=True)
    _, reference, _ = read(clip, gate=False)
    assert len(windows) == len(reference)
    for got, want in zip(windows, reference, strict=True):
        assert len(got.window.frames) == len(want.window.frames)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("media_root")
def test_overlapping_windows_are_analysed_whole_or_not_at_all(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """With overlap, decoding stops where a window starts that the previous one overlaps: that
    window is decoded in part, so it carries no analysis frames and the worker decodes its
    stored original instead (pending, no motion score); none is analysed on half its frames."""
    queued: dict[int, object] = {}
    # What would go to the inference queue (left out of the broker: other tests count it).
    monkeypatch.setattr(
        "detection.pipeline.enqueue", lambda pk, frames: queued.__setitem__(pk, frames)
    )
    clip = encode_still_clip(tmp_path / "still-then-fight.mp4", seconds=10, then=VIOLENT[:1])
    gated, windows, stored = read(
        clip, gate=True, camera_id=world.camera_a.pk, store=True, overlap=1.0
    )
    connection.close()
    _, reference, _ = read(clip, gate=False, overlap=1.0)
    assert [w.window.start for w in windows] == [w.window.start for w in reference]
    partial = [w for w in windows if w.undecoded]
    assert partial and all(not w.window.frames for w in partial)
    assert gated.windows_still > 0
    segments = {s.pk: s for s in Segment.objects.filter(pk__in=stored)}
    for closed, segment_id, want in zip(windows, stored, reference, strict=True):
        segment = segments[segment_id]
        if closed.undecoded:
            assert segment.status == Segment.Status.PENDING and segment.motion_score is None
            assert queued[segment_id] is None  # no frames: the worker decodes the original
        elif closed.window.frames:
            assert len(closed.window.frames) == len(want.window.frames)
            for a, b in zip(closed.window.frames, want.window.frames, strict=True):
                np.testing.assert_array_equal(a, b)
        else:
            assert segment.status == Segment.Status.SKIPPED and segment.motion_score == 0.0
            assert segment_id not in queued
        if want.window.end > 10.0:  # the fight
            assert len(closed.window.frames) == len(want.window.frames)
