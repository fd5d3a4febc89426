"""The segmenter on streams that misbehave: its buffer stays bounded and windows keep coming."""

from __future__ import annotations

import numpy as np
import pytest

from cameras.ingest.media import PacketRecord
from cameras.ingest.segmenter import Segmenter, StreamDiscontinuity, Window

FPS = 25


def packet(seconds: float, *, keyframe: bool) -> PacketRecord:
    pts = round(seconds * FPS)
    return PacketRecord(
        data=b"x" * 100, pts=pts, dts=pts, duration=1, keyframe=keyframe, seconds=seconds
    )


def feed(segmenter: Segmenter, times: list[float], keyframe_every: float | None) -> list[Window]:
    windows: list[Window] = []
    image = np.zeros((4, 4, 3), np.uint8)
    for seconds in times:
        keyframe = (
            keyframe_every is None
            or abs(seconds / keyframe_every - round(seconds / keyframe_every)) < 1e-9
        )
        windows += segmenter.add_packet(packet(seconds, keyframe=keyframe))
        segmenter.add_frame(seconds, image)
    return windows


def test_a_well_behaved_stream_gives_back_to_back_windows() -> None:
    segmenter = Segmenter(length=2.0)
    windows = feed(segmenter, [i / FPS for i in range(60 * FPS)], keyframe_every=2.0)
    assert len(windows) == 29
    assert [w.start for w in windows[:3]] == [0.0, 2.0, 4.0]
    assert max(len(w.packets) for w in windows) == 2 * FPS


def test_a_stream_with_one_keyframe_stops_before_its_buffer_grows_without_end() -> None:
    segmenter = Segmenter(length=2.0)
    assert segmenter.max_gap_seconds == 10.0
    with pytest.raises(StreamDiscontinuity, match="no keyframe for over 10 s"):
        feed(segmenter, [i / FPS for i in range(600 * FPS)], keyframe_every=3600.0)
    # Each window's original reached back to the one keyframe; none held more than the limit.
    assert len(segmenter._packets) <= (10 + 2 + 1) * FPS


def test_a_stream_whose_clock_goes_back_is_cut_and_started_again() -> None:
    segmenter = Segmenter(length=2.0)
    first = feed(segmenter, [i / FPS for i in range(60 * FPS)], keyframe_every=2.0)
    with pytest.raises(StreamDiscontinuity, match="went back"):
        feed(segmenter, [5.0], keyframe_every=1.0)
    partial = segmenter.flush()
    # The footage before the jump is all there: 29 windows and the partial last one.
    assert len(first) == 29 and len(partial) == 1 and partial[0].start == 58.0
    # After flush() the segmenter takes the stream up again from its next keyframe.
    again = feed(segmenter, [5.0 + i / FPS for i in range(10 * FPS)], keyframe_every=1.0)
    assert [w.start for w in again][:2] == [5.0, 7.0]


def test_a_leap_ahead_is_a_discontinuity_not_thousands_of_empty_windows() -> None:
    segmenter = Segmenter(length=2.0)
    feed(segmenter, [i / FPS for i in range(4 * FPS)], keyframe_every=2.0)
    with pytest.raises(StreamDiscontinuity, match="leapt"):
        feed(segmenter, [3600.0], keyframe_every=2.0)


def test_b_frames_a_little_out_of_order_are_not_a_discontinuity() -> None:
    segmenter = Segmenter(length=2.0)
    times = []
    for i in range(0, 20 * FPS, 3):  # decode order I P B B: the B-frames come after the P
        times += [i / FPS, (i + 2) / FPS, (i + 1) / FPS]
    windows = feed(segmenter, times, keyframe_every=2.0)
    assert len(windows) == 10  # 0-2 s ... 18-20 s
