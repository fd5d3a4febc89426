"""Decode a camera's stream only as far as analysis needs it (issue #14, item 2).

Two parts, both free of Django except `DecodeOptions.from_settings`:

- `MotionGate`: a compressed-domain motion estimate from packet sizes. A still scene's P-frames
  carry little more than sensor noise, so while they stay near the size of frames that decoded
  pixels showed to be still, nothing needs decoding. The gate only learns what "still" looks
  like from decoded frames that the pixel test (the segment motion gate's measure) found still,
  so a scene that starts busy, or a noise level that rises, makes it decode more, never less.
- `AnalysisDecoder`: wraps one stream's decoder. While the gate says still it keeps the packets
  undecoded (footage is stored from the packets anyway); when a packet says motion it decodes
  again from the keyframe at or before the start of the open window, so the window where motion
  starts gets every frame it would have had without the gate. It only stops decoding where a
  new window starts, so a window is either decoded whole or not at all (still).

`IngestTotals` counts what the readers of a process did; `run_ingest` publishes it for the bench.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

import cv2
import numpy as np

from ml.preprocess import InputSpec
from ml.video import model_frame

# Codecs whose P-frames code the change since a reference frame, so their size tracks motion.
# Intra-only codecs (MJPEG) code every frame whole: their sizes say nothing about motion.
INTER_CODECS = frozenset({"h264", "hevc"})
# Timestamps are float seconds from rational time bases (see ml.frames.EPSILON).
EPSILON = 1e-6


@dataclass(frozen=True)
class GateThresholds:
    # A P-frame this many times the still level (plus `margin_bytes`) is a sign of motion.
    ratio: float = 2.0
    # Added to the threshold so a very quiet scene's few-hundred-byte P-frames do not read
    # every flicker of compression noise as motion.
    margin_bytes: int = 200
    # Decoding goes on this long after the last sign of motion (packets or pixels): the end of
    # a movement codes small, and a pause in a fight must not stop its analysis.
    hold_seconds: float = 4.0
    # Decoded frames must look still for this long before the packet sizes seen meanwhile are
    # taken as the camera's still level.
    learn_seconds: float = 2.0
    # While still, the level follows the largest P-frame of this many seconds (never above what
    # pixels taught it): a scene that turned quieter (lights off) gets a lower threshold.
    level_seconds: float = 10.0
    # Pixel motion: mean absolute difference (0-1) between consecutive analysis frames. A
    # stretch counts as still when its mean stays below `pixel_still` (half the segment motion
    # gate's default, so learning errs towards decoding); one pair at or above `pixel_motion`
    # (twice that default: a keyframe's refresh of a noisy scene reaches about 0.002) is motion.
    pixel_still: float = 0.001
    pixel_motion: float = 0.004


class MotionGate:
    """Per camera: decide from each packet's size whether its frames need decoding.

    Pure logic. `observe` takes every packet in decode order; `pixels` takes the pixel motion
    of each pair of consecutive decoded analysis frames.
    """

    def __init__(self, thresholds: GateThresholds | None = None) -> None:
        self.thresholds = thresholds or GateThresholds()
        # The still level in bytes; None until decoded pixels proved a stretch still.
        self.level: float | None = None
        # The level last learnt from pixels: packet sizes may lower the level, never raise it
        # above this (only pixels can), so slow creeping motion cannot teach the gate to ignore it.
        self.anchor: float | None = None
        self.last_motion = -float("inf")
        self._still_since: float | None = None
        self._still_differences: list[float] = []
        self._sizes: deque[tuple[float, int]] = deque()  # P-frame sizes while decoding
        # Still P-frames of the last level_seconds, as a sliding maximum: sizes decrease from
        # the front, so the first is the largest.
        self._still_sizes: deque[tuple[float, int]] = deque()
        self._still_from: float | None = None

    @property
    def threshold(self) -> float | None:
        if self.level is None:
            return None
        return self.level * self.thresholds.ratio + self.thresholds.margin_bytes

    def observe(self, size: int, *, keyframe: bool, seconds: float) -> bool:
        """A packet arrived; True while its frames should be decoded."""
        if not keyframe:
            threshold = self.threshold
            if threshold is None or size > threshold:
                self.last_motion = max(self.last_motion, seconds)
            elif self.anchor is not None:
                self._lower_level(size, seconds)
            self._sizes.append((seconds, size))
            horizon = seconds - self.thresholds.learn_seconds - self.thresholds.hold_seconds
            while self._sizes and self._sizes[0][0] < horizon:
                self._sizes.popleft()
        return self.moving(seconds)

    def _lower_level(self, size: int, seconds: float) -> None:
        assert self.anchor is not None
        sizes = self._still_sizes
        while sizes and sizes[-1][1] <= size:
            sizes.pop()
        sizes.append((seconds, size))
        while sizes[0][0] < seconds - self.thresholds.level_seconds:
            sizes.popleft()
        if self._still_from is None:
            self._still_from = seconds
        if seconds - self._still_from >= self.thresholds.level_seconds:
            self.level = min(self.anchor, float(sizes[0][1]))

    def moving(self, seconds: float) -> bool:
        return self.level is None or seconds - self.last_motion < self.thresholds.hold_seconds

    def pixels(self, seconds: float, difference: float) -> None:
        """Pixel motion (0-1) between the decoded analysis frame at `seconds` and the one
        before it. Motion seen in pixels counts as motion; a still stretch of `learn_seconds`
        sets the still level to the largest P-frame seen in it."""
        if difference >= self.thresholds.pixel_motion:
            self._still_since = None
            self._still_differences.clear()
            self.last_motion = max(self.last_motion, seconds)
            return
        if self._still_since is None:
            self._still_since = seconds
            return
        self._still_differences.append(difference)
        if seconds - self._still_since < self.thresholds.learn_seconds:
            return
        mean = sum(self._still_differences) / len(self._still_differences)
        sizes = [size for at, size in self._sizes if at >= self._still_since - EPSILON]
        if mean < self.thresholds.pixel_still and sizes:
            self.level = self.anchor = float(max(sizes))
            self._still_sizes.clear()
            self._still_from = None
        self._still_since = seconds
        self._still_differences.clear()


@dataclass(frozen=True)
class DecodeOptions:
    # Skip H.264's in-loop deblocking filter (AVDISCARD_ALL): cheaper decoding, slightly
    # different pixels; see bench/bench_decode.py for the cost and the score change.
    skip_loop_filter: bool = False
    motion_gate: bool = True
    gate: GateThresholds = field(default_factory=GateThresholds)
    # Behind its stream by more than this (seconds), a reader records without decoding until it
    # is back within `shed_resume` (DecodeShedder); 0: never.
    shed_after: float = 2.0
    shed_resume: float = 0.5

    @classmethod
    def from_settings(cls) -> DecodeOptions:
        from django.conf import settings

        return cls(
            skip_loop_filter=bool(getattr(settings, "INGEST_SKIP_LOOP_FILTER", False)),
            motion_gate=bool(getattr(settings, "INGEST_MOTION_GATE", True)),
            shed_after=float(getattr(settings, "INGEST_SHED_LAG_SECONDS", 2.0)),
            shed_resume=float(getattr(settings, "INGEST_SHED_RESUME_SECONDS", 0.5)),
            gate=GateThresholds(
                ratio=float(getattr(settings, "INGEST_MOTION_GATE_RATIO", 2.0)),
                margin_bytes=int(getattr(settings, "INGEST_MOTION_GATE_MARGIN_BYTES", 200)),
                hold_seconds=float(getattr(settings, "INGEST_MOTION_GATE_HOLD_SECONDS", 4.0)),
                learn_seconds=float(getattr(settings, "INGEST_MOTION_GATE_LEARN_SECONDS", 2.0)),
                level_seconds=float(getattr(settings, "INGEST_MOTION_GATE_LEVEL_SECONDS", 10.0)),
                pixel_still=float(getattr(settings, "INGEST_MOTION_GATE_PIXEL_STILL", 0.001)),
                pixel_motion=float(getattr(settings, "INGEST_MOTION_GATE_PIXEL_MOTION", 0.004)),
            ),
        )


@dataclass
class IngestTotals:
    """What the readers of one process did since it started (the bench reads these)."""

    packets: int = 0
    frames_decoded: int = 0
    frames_not_decoded: int = 0  # packets the motion gate never decoded
    frames_converted: int = 0  # decoded frames turned into analysis frames
    windows: int = 0
    windows_still: int = 0  # stored without decoding: nothing moved
    frames_shed: int = 0  # packets left undecoded because the reader fell behind its stream
    windows_shed: int = 0  # stored for analysis later: decoding gave way to recording
    windows_stored: int = 0  # rows written by the shard's window writer
    store_batches: int = 0  # the writer's transactions (windows_stored / this: its batch size)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if f.name[0] != "_"}


# One per process: readers come and go as cameras change, the totals stay.
INGEST_TOTALS = IngestTotals()


def pixel_motion(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean absolute difference (0-1) of two small RGB frames, as `media.motion_score`."""
    # One pass in C: it runs for every analysis frame of every camera.
    return float(cv2.norm(previous, current, cv2.NORM_L1)) / (current.size * 255.0)


def convert_for_analysis(frame: Any, spec: InputSpec, *, totals: IngestTotals) -> np.ndarray:
    """A decoded frame (av.VideoFrame) as the model's RGB input, counted in `totals`: the
    main stream (`AnalysisDecoder.small`) and the detect stream (the reader's DetectFeed) both
    convert through here, with the rule training used (`ml.video.model_frame`, as the model's
    card says), so live windows look like training windows."""
    totals.add(frames_converted=1)
    return model_frame(frame, spec)


class DecodeShedder:
    """Whether a reader is so far behind its stream that decoding must give way to recording.

    Decoding is the reader's cost (recording only copies packets): a process with more cameras
    than its cores can decode falls behind real time, and a live camera's packets then pile up
    until the connection breaks and footage is lost. Behind by more than `shed_after` seconds,
    the reader stops decoding at the next window and only records; it decodes again once it is
    back within `resume_below`. The windows in between are stored and analysed later from their
    originals, when the load allows (detection.backpressure).

    Behind what: a camera's own delivery delay (network, its encoder) is not the reader's. The
    lag is measured against its smallest value over the last `baseline_seconds`, so a
    constant delay is learned, and only the lag the reader adds on top of it counts.
    """

    def __init__(
        self, *, shed_after: float, resume_below: float, baseline_seconds: float = 60.0
    ) -> None:
        self.shed_after = shed_after
        self.resume_below = min(resume_below, shed_after)
        self.baseline_seconds = baseline_seconds
        self.shedding = False
        # (when, lag): increasing lags, so the first one is the window's smallest.
        self._lags: deque[tuple[float, float]] = deque()

    def update(self, *, now: float, due: float, storage_lag: float = 0.0) -> bool:
        """`due`: when the packet at hand should have been read (monotonic seconds);
        `storage_lag`: how long the oldest window handed to the shard's writer has waited to
        be stored. Windows waiting to be stored are footage held only in this process: when
        they pile up, decoding gives way to storing them as it gives way to reading."""
        lag = now - due
        while self._lags and self._lags[-1][1] >= lag:
            self._lags.pop()
        self._lags.append((now, lag))
        while self._lags[0][0] < now - self.baseline_seconds:
            self._lags.popleft()
        behind = max(lag - self._lags[0][1], storage_lag)
        if self.shedding:
            self.shedding = behind >= self.resume_below
        else:
            self.shedding = self.shed_after > 0 and behind > self.shed_after
        return self.shedding


class AnalysisDecoder:
    """One stream's decoder, fed every packet; decodes what analysis needs.

    `push` returns the decoded frames (av.VideoFrame) in decode order, possibly several when
    decoding resumes from an earlier keyframe. `window_start` is the start of the earliest
    window still open: decoding resumes far enough back to give it every frame, and stops only
    when that start moves on (a new window), so no window is half decoded.
    """

    def __init__(
        self,
        stream: Any,
        *,
        options: DecodeOptions | None = None,
        gated: bool = True,
        totals: IngestTotals | None = None,
    ) -> None:
        self.options = options or DecodeOptions()
        self.stream = stream
        context = stream.codec_context
        # One thread per decoder: with dozens of cameras on two cores, frame threads would only
        # add context switches.
        stream.thread_type = "SLICE"
        context.thread_count = 1
        if self.options.skip_loop_filter:
            context.options = {**dict(context.options or {}), "skip_loop_filter": "all"}
        use_gate = gated and self.options.motion_gate and context.name in INTER_CODECS
        self.gate = MotionGate(self.options.gate) if use_gate else None
        self.totals = totals if totals is not None else INGEST_TOTALS
        self.decoding = True
        # Set by the reader while it is behind its stream (DecodeShedder): nothing is decoded
        # from the next window on, and the windows left undecoded say why (`shed_in`).
        self.shedding = False
        # (packet, seconds, keyframe, shed): waiting undecoded; `shed` when for capacity.
        self._pending: list[tuple[Any, float, bool, bool]] = []
        # False once packets were dropped undecoded: the decoder's references are stale and it
        # must restart from a keyframe.
        self._chain_intact = True
        self._window_start: float | None = None
        self._previous_image: np.ndarray | None = None
        # Times of packets dropped undecoded, as long as a window may still ask about them;
        # `_shed` those of them left for capacity.
        self._undecoded: deque[float] = deque()
        self._shed: deque[float] = deque()
        # Counters of this decoder (the process totals get the same increments).
        self.packets = 0
        self.frames_decoded = 0
        self.frames_not_decoded = 0

    def push(self, packet: Any, *, seconds: float, window_start: float | None) -> list[Any]:
        self.packets += 1
        self.totals.add(packets=1)
        keyframe = bool(packet.is_keyframe)
        new_window = window_start is not None and window_start != self._window_start
        self._window_start = window_start
        moving = True
        if self.gate is not None:
            moving = self.gate.observe(packet.size, keyframe=keyframe, seconds=seconds)
        if moving and not self.shedding:
            frames = self._resume(window_start) if self._pending else []
            self.decoding = True
            return frames + self._decode(packet)
        if self.decoding and not new_window:
            return self._decode(packet)  # finish the window being decoded
        self.decoding = False
        self._pending.append((packet, seconds, keyframe, self.shedding))
        if self.shedding:
            self.totals.add(frames_shed=1)
        self._trim(window_start)
        return []

    def small(self, frame: Any, spec: InputSpec) -> np.ndarray:
        """A decoded frame as the model's RGB input size."""
        return convert_for_analysis(frame, spec, totals=self.totals)

    def pixels(self, seconds: float, image: np.ndarray) -> None:
        """A decoded analysis frame (small RGB): its motion teaches the gate."""
        previous, self._previous_image = self._previous_image, image
        if self.gate is not None and previous is not None and previous.shape == image.shape:
            self.gate.pixels(seconds, pixel_motion(previous, image))

    def undecoded_in(self, start: float, end: float) -> bool:
        """Whether frames in [start, end) were left undecoded (or still wait, which for a
        window being closed is the same thing)."""
        return any_within(self._undecoded, start, end) or any(
            within(at, start, end) for _, at, _, _ in self._pending
        )

    def shed_in(self, start: float, end: float) -> bool:
        """Whether frames in [start, end) were left undecoded because the reader was behind."""
        return any_within(self._shed, start, end) or any(
            shed and within(at, start, end) for _, at, _, shed in self._pending
        )

    def flush(self, packet: Any) -> list[Any]:
        """The demuxer's end-of-stream marker: the decoder's held-back frames, if decoding."""
        self._drop(len(self._pending))
        if not self._chain_intact:
            return []
        frames = list(packet.decode())
        self._count_decoded(len(frames))
        return frames

    def close(self) -> None:
        """The session ended: packets still waiting were never decoded."""
        self._drop(len(self._pending))

    def _decode(self, packet: Any) -> list[Any]:
        frames = list(packet.decode())
        self._count_decoded(len(frames))
        return frames

    def _count_decoded(self, count: int) -> None:
        if count:
            self.frames_decoded += count
            self.totals.add(frames_decoded=count)

    def _resume(self, window_start: float | None) -> list[Any]:
        """Decode the waiting packets from the last keyframe the open window needs."""
        start = self._keyframe_index(window_start)
        if start is None:
            if not self._chain_intact:
                # No keyframe to start from (cannot happen with a segmenter, which keeps one):
                # these packets cannot be decoded.
                self._drop(len(self._pending))
                return []
        else:
            self._drop(start)
        if self._pending and self._pending[0][2] and not self._chain_intact:
            # Forget the references of frames decoded before the gap.
            self.stream.codec_context.flush_buffers()
            self._chain_intact = True
        frames: list[Any] = []
        for packet, *_ in self._pending:
            frames += self._decode(packet)
        self._pending.clear()
        return frames

    def _keyframe_index(self, window_start: float | None) -> int | None:
        """Index of the last waiting keyframe at or before `window_start`."""
        found: int | None = None
        for index, (_, seconds, keyframe, _) in enumerate(self._pending):
            if window_start is not None and seconds > window_start + EPSILON:
                break
            if keyframe:
                found = index
        return found

    def _trim(self, window_start: float | None) -> None:
        """Drop waiting packets that no open window can need (before its keyframe)."""
        index = self._keyframe_index(window_start)
        if index:
            self._drop(index)

    def _drop(self, count: int) -> None:
        if count <= 0:
            return
        self._undecoded.extend(at for _, at, _, _ in self._pending[:count])
        self._shed.extend(at for _, at, _, shed in self._pending[:count] if shed)
        del self._pending[:count]
        self._chain_intact = False
        self.frames_not_decoded += count
        self.totals.add(frames_not_decoded=count)


def within(seconds: float, start: float, end: float) -> bool:
    return start - EPSILON <= seconds < end - EPSILON


def any_within(times: deque[float], start: float, end: float) -> bool:
    """Whether one of the increasing `times` falls in [start, end); the times before `start`
    are forgotten (windows are asked about in order)."""
    while times and times[0] < start - EPSILON:
        times.popleft()
    return any(within(at, start, end) for at in times)


def publishable(totals: dict[str, int], *, cameras: int) -> dict[str, float | int]:
    """The stats record `run_ingest` publishes (names read by bench/bench_pipeline.py)."""
    return {
        "cameras": cameras,
        "packets": totals["packets"],
        "frames_decoded": totals["frames_decoded"],
        "frames_not_decoded": totals["frames_not_decoded"],
        "frames_converted": totals["frames_converted"],
        "windows": totals["windows"],
        "windows_still": totals["windows_still"],
        "frames_shed": totals["frames_shed"],
        "windows_shed": totals["windows_shed"],
        "windows_stored": totals["windows_stored"],
        "store_batches": totals["store_batches"],
        "updated": time.time(),
    }


__all__ = [
    "INGEST_TOTALS",
    "AnalysisDecoder",
    "DecodeOptions",
    "DecodeShedder",
    "GateThresholds",
    "IngestTotals",
    "MotionGate",
    "any_within",
    "pixel_motion",
    "publishable",
]
