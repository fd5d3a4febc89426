"""The one frame-sampling rule (ml.frames), on synthetic timestamps: source rates from 12 to 30
fps, slow sources, jitter, gaps, duplicated and backward timestamps; and decode_frames agreeing
with the stateful sampler the live reader uses."""

from __future__ import annotations

import numpy as np
import pytest

from ml.frames import FrameSampler, sample_frames, window_slots


def timestamps(rate: float, seconds: float, start: float = 0.0) -> list[float]:
    return [start + i / rate for i in range(round(rate * seconds))]


@pytest.mark.parametrize("rate", [12, 15, 25, 29.97, 30])
def test_sources_faster_than_the_analysis_rate_give_one_frame_per_tick(rate: float) -> None:
    slots = sample_frames(timestamps(rate, 4.0), 10.0)
    ticks = [slot.tick for slot in slots]
    # 4 s at 10 fps: ticks 0..39 (the last frame lies just before 4 s), each exactly once.
    assert ticks == list(range(len(ticks)))
    assert 39 <= len(ticks) <= 40
    # Each tick is filled by the first frame at or after it: never more than a frame late.
    pts = timestamps(rate, 4.0)
    for slot in slots:
        assert 0 <= pts[slot.frame] - slot.seconds < 1 / rate + 1e-9
    # A fast source drops frames, it never repeats one.
    frames = [slot.frame for slot in slots]
    assert len(set(frames)) == len(frames)


def test_a_slow_source_repeats_its_frames() -> None:
    sampler = FrameSampler(10.0)
    counts = [sampler.keep(t) for t in timestamps(5.0, 2.0)]  # 5 fps at 10 fps
    assert counts == [1] + [2] * 9
    # 12 fps at 15 fps: 4 frames fill 5 ticks.
    slots = sample_frames(timestamps(12.0, 2.0), 15.0)
    assert [s.tick for s in slots] == list(range(len(slots)))
    assert len(slots) == 29  # ticks 0..28: the last frame lies at 1.9167 s = tick 28.75


def test_window_length_does_not_depend_on_the_source_rate() -> None:
    # The point of repeating: a 1.6 s window holds 16 analysis frames at any source rate.
    for rate in (5.0, 7.5, 12.0, 15.0, 25.0, 30.0):
        held = window_slots(timestamps(rate, 5.0), 10.0, 1.0, 2.6)
        assert len(held) == 16, rate
        assert held[0].seconds == pytest.approx(1.0)


def test_jitter_smaller_than_a_tick_keeps_one_frame_per_tick() -> None:
    rng = np.random.default_rng(3)
    pts = np.array(timestamps(30.0, 10.0)) + rng.uniform(-0.008, 0.008, 300)
    pts[0] = 0.0
    slots = sample_frames(sorted(pts.tolist()), 10.0)
    assert [s.tick for s in slots] == list(range(len(slots)))
    assert len(slots) in (99, 100)


def test_duplicated_and_backward_timestamps_fill_nothing() -> None:
    sampler = FrameSampler(10.0)
    assert sampler.keep(0.0) == 1
    assert sampler.keep(0.0) == 0  # duplicated pts
    assert sampler.keep(0.1) == 1
    assert sampler.keep(0.1) == 0
    assert sampler.keep(0.05) == 0  # backwards
    assert sampler.keep(0.2) == 1
    assert sampler.frames_offered == 6


def test_a_gap_is_not_filled_by_stretching_one_frame() -> None:
    pts = timestamps(10.0, 1.0) + timestamps(10.0, 1.0, start=5.0)  # 4 s without frames
    slots = sample_frames(pts, 10.0)
    assert len(slots) == 20
    assert [s.tick for s in slots[10:]] == list(range(50, 60))
    # A short stall (under max_gap_seconds) is repeated like a slow source.
    short = sample_frames([0.0, 0.1, 0.6, 0.7], 10.0)
    assert [s.frame for s in short] == [0, 1, 2, 2, 2, 2, 2, 3]


def test_an_explicit_origin_and_a_late_first_frame() -> None:
    # The live reader's session starts at 0; the first frame comes 0.25 s later.
    slots = sample_frames([0.25, 0.35], 10.0, origin=0.0)
    assert [(s.tick, s.frame) for s in slots] == [(0, 0), (1, 0), (2, 0), (3, 1)]


def test_timestamps_a_hair_early_still_fill_their_tick() -> None:
    # 1001/30000 time bases turned into float seconds land a rounding error before the tick.
    slots = sample_frames([0.0, 0.1 - 1e-9, 0.2 - 1e-9], 10.0)
    assert [s.tick for s in slots] == [0, 1, 2]


@pytest.mark.parametrize("fps", [0, -1, float("nan"), float("inf")])
def test_impossible_rates_are_refused(fps: float) -> None:
    with pytest.raises(ValueError, match="fps"):
        FrameSampler(fps)


def test_impossible_timestamps_and_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        FrameSampler(10.0).keep(float("nan"))
    with pytest.raises(ValueError, match="ends after"):
        window_slots([0.0, 0.1], 10.0, 2.0, 1.0)
    assert sample_frames([], 10.0) == []


def test_decode_frames_follows_the_sampler(tmp_path) -> None:
    """A file decoded offline gives, frame for frame, what the per-frame sampler keeps live."""
    import av

    from ml.video import decode_frames

    path = tmp_path / "ramp.mp4"
    rate = 6  # slower than the analysis rate: frames must repeat
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(12):
            image = np.full((32, 32, 3), i * 20, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    decoded = decode_frames(path, fps=10.0)
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        time_base = video.time_base
        assert time_base is not None
        pts = [float((f.pts or 0) * time_base) for f in container.decode(video)]
    sampler = FrameSampler(10.0)
    expected = [i for i, t in enumerate(pts) for _ in range(sampler.keep(t))]
    assert len(decoded) == len(expected) == 19  # 12 frames over 1.83 s at 10 fps
    levels = [round(float(frame.mean()) / 20) for frame in decoded]
    assert levels == expected
