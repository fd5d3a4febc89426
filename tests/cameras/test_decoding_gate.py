"""The compressed-domain motion gate (cameras/ingest/decoding.py): it decodes everything until
decoded pixels have shown it what a still scene's packets look like, then skips still
stretches and resumes at the first sign of motion."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from bench.clips import encode_still_clip
from cameras.ingest.decoding import (
    AnalysisDecoder,
    DecodeOptions,
    GateThresholds,
    IngestTotals,
    MotionGate,
    pixel_motion,
)
from ml.preprocess import InputSpec
from ml.video import model_frame

FPS = 25
THRESHOLDS = GateThresholds(ratio=2.0, margin_bytes=200, hold_seconds=4.0, learn_seconds=2.0)


def feed(gate: MotionGate, sizes: list[int], *, start: float = 0.0, pixels: float | None = None):
    """Packets of `sizes` at 25 fps (a keyframe every second); `pixels`: the pixel motion of
    every 2.5th frame (10 fps analysis), as the reader reports it while decoding."""
    decoded: list[bool] = []
    for index, size in enumerate(sizes):
        seconds = start + index / FPS
        decode = gate.observe(size, keyframe=index % FPS == 0, seconds=seconds)
        decoded.append(decode)
        if decode and pixels is not None and index % 5 in (0, 2):
            gate.pixels(seconds, pixels)
    return decoded


def learnt_gate(still_size: int = 100) -> MotionGate:
    gate = MotionGate(THRESHOLDS)
    feed(gate, [still_size] * FPS * 8, pixels=0.0002)
    assert gate.level == still_size
    return gate


def test_nothing_is_skipped_before_pixels_showed_a_still_scene() -> None:
    gate = MotionGate(THRESHOLDS)
    # Tiny packets, but no decoded frame has been judged yet: the scene may be a busy one.
    assert all(feed(gate, [50] * FPS * 30))
    assert gate.level is None


def test_a_busy_scene_never_teaches_the_gate_anything() -> None:
    gate = MotionGate(THRESHOLDS)
    assert all(feed(gate, [3000] * FPS * 30, pixels=0.01))
    assert gate.level is None


def test_still_packets_stop_decoding_and_one_large_one_resumes_it() -> None:
    gate = learnt_gate(100)
    assert not any(feed(gate, [110] * FPS * 5, start=10.0))
    # The threshold is 2 x 100 + 200 bytes: 390 is still, 410 is motion.
    assert not gate.observe(390, keyframe=False, seconds=15.0)
    assert gate.observe(410, keyframe=False, seconds=15.04)
    # Decoding holds for hold_seconds after the last sign of motion, then stops.
    assert all(feed(gate, [100] * 95, start=15.08))
    assert not gate.observe(100, keyframe=False, seconds=19.1)


def test_keyframes_say_nothing_about_motion() -> None:
    gate = learnt_gate(100)
    assert not gate.observe(40_000, keyframe=True, seconds=10.0)


def test_motion_seen_in_pixels_keeps_decoding_whatever_the_packets_say() -> None:
    gate = learnt_gate(100)
    assert gate.observe(5000, keyframe=False, seconds=10.0)
    # Small packets, but the decoded frames move (a slow, small movement).
    decoded = feed(gate, [120] * FPS * 10, start=10.04, pixels=0.01)
    assert all(decoded)


def test_packets_alone_never_raise_the_still_level() -> None:
    """Motion that creeps up in size packet by packet must not become the new 'still'."""
    gate = learnt_gate(100)
    for step in range(2000):
        gate.observe(100 + step, keyframe=False, seconds=10.0 + step / FPS)
    assert gate.level is not None and gate.level <= 100
    assert gate.observe(2000, keyframe=False, seconds=100.0)


def test_a_quieter_scene_lowers_the_level_so_small_motion_still_shows() -> None:
    gate = learnt_gate(1000)  # threshold 2200 bytes
    feed(gate, [100] * FPS * 12, start=10.0)
    # Now the largest P-frame of the last 10 s: 100 bytes, threshold 400.
    assert gate.threshold == 400
    assert gate.observe(700, keyframe=False, seconds=23.0)


def test_the_level_follows_the_largest_still_packet_not_the_typical_one() -> None:
    """A noisy scene's P-frames vary (the one after a keyframe is the largest): the level must
    stay above all of them, or each keyframe would read as motion."""
    gate = MotionGate(THRESHOLDS)
    sizes = [2600 if index % FPS == 1 else 1100 for index in range(FPS * 60)]
    decoded = feed(gate, sizes, pixels=0.0008)
    assert gate.level == 2600
    assert not any(decoded[FPS * 10 :])


@pytest.fixture(scope="module")
def still_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode_still_clip(tmp_path_factory.mktemp("still") / "still.mp4", seconds=20)


def decode_clip(clip: Path, *, gate: bool) -> tuple[AnalysisDecoder, list[tuple[int, bytes]]]:
    """Every frame the decoder hands out (pts, Y plane), the window start moving every 2 s."""
    frames: list[tuple[int, bytes]] = []
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base
        assert time_base is not None
        decoder = AnalysisDecoder(
            stream, options=DecodeOptions(motion_gate=gate), totals=IngestTotals()
        )
        for packet in container.demux(stream):
            if packet.size == 0 or packet.pts is None:
                continue
            seconds = float(packet.pts * time_base)
            for frame in decoder.push(packet, seconds=seconds, window_start=seconds // 2 * 2):
                assert frame.pts is not None
                frames.append((frame.pts, bytes(frame.planes[0])))
                image = model_frame(frame, InputSpec())
                decoder.pixels(float(frame.pts * time_base), image)
        decoder.close()
    return decoder, frames


def test_the_decoder_skips_most_of_a_still_clip_and_counts_what_it_skipped(
    still_clip: Path,
) -> None:
    decoder, frames = decode_clip(still_clip, gate=True)
    assert decoder.packets == 500
    assert decoder.frames_decoded + decoder.frames_not_decoded == 500
    # 8 s to learn (2 s of still pixels, 4 s of hold, to the next window); then nothing.
    assert decoder.frames_not_decoded >= 250
    assert decoder.totals.frames_not_decoded == decoder.frames_not_decoded
    # What it did decode are the very frames an ungated decoder gives at those times.
    _, everything = decode_clip(still_clip, gate=False)
    reference = dict(everything)
    assert len(everything) == 500
    for pts, plane in frames:
        assert plane == reference[pts]


def test_the_decoder_shrinks_frames_by_the_models_rule(still_clip: Path) -> None:
    with av.open(str(still_clip)) as container:
        stream = container.streams.video[0]
        decoder = AnalysisDecoder(stream, options=DecodeOptions(), totals=IngestTotals())
        frame = next(container.decode(stream))
        ffmpeg = decoder.small(frame, InputSpec(resize="ffmpeg-area"))
        opencv = decoder.small(frame, InputSpec(resize="opencv-area"))
        assert np.array_equal(ffmpeg, model_frame(frame, InputSpec(resize="ffmpeg-area")))
        assert np.array_equal(opencv, model_frame(frame, InputSpec(resize="opencv-area")))
    assert ffmpeg.shape == opencv.shape == (64, 64, 3)
    assert ffmpeg.dtype == opencv.dtype == np.uint8
    # Different pixels (a model is served the rule it was trained on), the same picture.
    assert np.abs(ffmpeg.astype(int) - opencv.astype(int)).mean() < 3
    assert decoder.totals.frames_converted == 2


def test_skip_loop_filter_reaches_the_decoder_only_when_asked(still_clip: Path) -> None:
    for wanted in (False, True):
        with av.open(str(still_clip)) as container:
            stream = container.streams.video[0]
            AnalysisDecoder(
                stream, options=DecodeOptions(skip_loop_filter=wanted), totals=IngestTotals()
            )
            assert (stream.codec_context.options.get("skip_loop_filter") == "all") is wanted
            assert next(container.decode(stream)).width == 640


def test_pixel_motion_is_the_mean_absolute_difference() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    expected = np.abs(a.astype(int) - b.astype(int)).mean() / 255
    assert pixel_motion(a, b) == pytest.approx(expected, abs=1e-12)
    assert pixel_motion(a, a) == 0.0
