"""A camera's detect stream: a lower-resolution stream of the same camera, decoded for analysis
only, while the main stream is demuxed (never decoded) and recorded byte for byte.

Two parts:
- `AnalysisStream`, a thread that opens the detect source, decodes it, samples it with the one
  frame rule (`ml.frames.FrameSampler`) and converts the kept frames as the main path does, and
  queues them with their time on the main stream's clock.
- `DetectFeed`, the reader's side for one session of the main stream: it starts the thread when
  the main stream's clock starts, hands the queued frames to the segmenter from the reader's own
  thread (the segmenter is never touched by two threads), and when the detect stream is down,
  ends or falls behind, says so and has the reader decode the main stream instead, retrying
  the detect stream with backoff.

Clocks. A detect frame's time on the main clock is its own presentation time since its first
frame, plus the moment that first frame arrived, measured from the main stream's first
keyframe (both streams are live, so arrival is the only common clock). A file main stream with
a file detect stream is replayed from both starts at the same moment: the offset is 0 and both
are paced against the same origin, so the same clip at two sizes gives the same frame times.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import av
import numpy as np

from cameras.ingest.decoding import INGEST_TOTALS, IngestTotals, any_within
from cameras.ingest.reader import ARRIVAL_TIMED_FORMATS, clips_of, redact
from cameras.sources import Source, SourceError, parse_source_uri
from ml.frames import FrameSampler

logger = logging.getLogger(__name__)

# How far a main clip may run past the end of its replayed detect clip before the rest of it is
# analysed from the main stream (two clips of the same footage differ by a frame or two).
ENDED_EARLY_SECONDS = 1.0
# About a minute of 60-fps video.
MAX_QUEUED_FRAMES = 4096


@dataclass(frozen=True)
class AnalysisFrame:
    """One decoded detect frame, timed on the main stream's clock (seconds since its origin)."""

    seconds: float
    image: np.ndarray | None  # only for frames that fill analysis ticks
    ticks: tuple[float, ...]  # the analysis ticks it fills, on the same clock
    # Not decoded: the shard was behind (DetectFeed.shedding), so this packet was only read.
    # Its time still moves the stream on, and the window holding it is analysed later.
    shed: bool = False


class AnalysisStream(threading.Thread):
    """Decode one detect source until it ends, fails or is stopped."""

    def __init__(
        self,
        source: Source,
        *,
        clip: Path | None,
        fps: float,
        convert: Callable[[Any], np.ndarray],
        epoch_mono: float,
        synchronous: bool,
        read_timeout: float,
        name: str,
        totals: IngestTotals | None = None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.source = source
        self.clip = clip
        self.fps = fps
        self.convert = convert
        self.epoch_mono = epoch_mono
        # True for a file detect stream beside a file main stream: replayed from its start at
        # the main stream's origin (offset 0) instead of being mapped by arrival.
        self.synchronous = synchronous
        self.read_timeout = read_timeout
        # The shard's counters: a detect stream's packets and decoding are the shard's cost.
        self.totals = totals if totals is not None else INGEST_TOTALS
        self._stop_event = threading.Event()
        self._changed = threading.Condition()
        # Drained at every main packet; the bound only matters if the main stream stalls
        # while this one runs on (the reader then ends the session at its read timeout).
        self._frames: deque[AnalysisFrame] = deque(maxlen=MAX_QUEUED_FRAMES)
        self.progress = float("-inf")  # main-clock seconds of the last frame queued
        # Set by the reader thread while its shard is behind (DecodeShedder): packets are read
        # and timed but not decoded, and decoding resumes at the next keyframe.
        self.shedding = False
        self.packets_read = 0
        self.frames_decoded = 0
        self.ended = False  # the stream ended of its own accord (normal for a file)
        self.failure: str | None = None  # why it stopped, when it failed

    def stop(self) -> None:
        self._stop_event.set()
        with self._changed:
            self._changed.notify_all()

    @property
    def finished(self) -> bool:
        return self.ended or self.failure is not None

    def take(self, before: float = float("inf")) -> list[AnalysisFrame]:
        """The queued frames timed before `before` (main clock), oldest first."""
        frames: list[AnalysisFrame] = []
        with self._changed:
            while self._frames and self._frames[0].seconds < before:
                frames.append(self._frames.popleft())
        return frames

    def wait_past(self, seconds: float, timeout: float) -> bool:
        """Wait until a frame at or after `seconds` (main clock) is queued; False when the
        stream finished or `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.progress < seconds:
                left = deadline - time.monotonic()
                if self.finished or self._stop_event.is_set() or left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def run(self) -> None:
        try:
            self._decode()
            with self._changed:
                self.ended = True
        except (SourceError, SourceEndedEarly) as error:
            self._fail(str(error))
        except (av.error.FFmpegError, OSError) as error:
            self._fail(f"Cannot read {redact(self.source.uri)}: {error}")
        except Exception as error:
            logger.exception("detect stream %s failed", redact(self.source.uri))
            self._fail(f"{type(error).__name__}: {error}")
        finally:
            with self._changed:
                self._changed.notify_all()

    def _fail(self, reason: str) -> None:
        with self._changed:
            self.failure = redact(reason)

    def _decode(self) -> None:
        target = str(self.clip) if self.clip is not None else self.source.uri
        container = self.source.type.open(target, timeout=self.read_timeout)
        with container:
            if not container.streams.video:
                raise SourceError(f"{redact(self.source.uri)} has no video stream.")
            stream = container.streams.video[0]
            # As the main path: one thread per decoder, many cameras share two cores.
            stream.thread_type = "SLICE"
            stream.codec_context.thread_count = 1
            clock = _DetectClock(
                time_base=stream.time_base,
                arrival_timed=container.format.name in ARRIVAL_TIMED_FORMATS,
                paced=self.source.type.paced,
                synchronous=self.synchronous,
                epoch_mono=self.epoch_mono,
            )
            sampler = FrameSampler(self.fps)
            # After packets were left undecoded the decoder's references are gone: it starts
            # again at a keyframe, and the packets before that are left undecoded too.
            wait_for_keyframe = False
            for packet in container.demux(stream):
                if self._stop_event.is_set():
                    return
                if packet.size == 0:
                    # End of stream: the decoder's held-back frames, unless it was left behind.
                    frames = [] if wait_for_keyframe else packet.decode()
                    for frame in frames:
                        if not self._queue_frame(frame, clock, sampler):
                            return
                    continue
                self.packets_read += 1
                if self.shedding or (wait_for_keyframe and not packet.is_keyframe):
                    wait_for_keyframe = True
                    self.totals.add(packets=1, frames_not_decoded=1)
                    seconds = clock.seconds(packet.pts, time.monotonic())
                    if not self._pace(clock, packet.pts):
                        return
                    self._queue(AnalysisFrame(seconds, None, (), shed=True))
                    continue
                if wait_for_keyframe:
                    stream.codec_context.flush_buffers()
                    wait_for_keyframe = False
                self.totals.add(packets=1)
                for frame in packet.decode():
                    if not self._queue_frame(frame, clock, sampler):
                        return
            if self.packets_read == 0:
                raise SourceEndedEarly("the detect stream sent no video")
            if not self.source.type.loops and not self._stop_event.is_set():
                # A live source that ends has disconnected.
                raise SourceEndedEarly("the detect stream ended")

    def _queue_frame(self, frame: Any, clock: _DetectClock, sampler: FrameSampler) -> bool:
        """Time, pace, sample and queue one decoded frame; False when stopped meanwhile."""
        seconds = clock.seconds(frame.pts, time.monotonic())
        if not self._pace(clock, frame.pts):
            return False
        self.frames_decoded += 1
        self.totals.add(frames_decoded=1)
        slots = sampler.slots(seconds)
        image = self.convert(frame) if slots else None
        assert sampler.origin is not None, "set by the first frame offered"
        ticks = tuple(sampler.origin + slot.seconds for slot in slots)
        self._queue(AnalysisFrame(seconds, image, ticks))
        return True

    def _pace(self, clock: _DetectClock, pts: int | None) -> bool:
        """Wait until a replayed file's packet is due; False when stopped meanwhile."""
        delay = clock.delay(pts)
        return not (delay > 0 and self._stop_event.wait(delay))

    def _queue(self, frame: AnalysisFrame) -> None:
        with self._changed:
            self._frames.append(frame)
            self.progress = max(self.progress, frame.seconds)
            self._changed.notify_all()


class _DetectClock:
    """A detect packet's or frame's time on the main stream's clock (see the module's doc)."""

    def __init__(
        self,
        *,
        time_base: Any,
        arrival_timed: bool,
        paced: bool,
        synchronous: bool,
        epoch_mono: float,
    ) -> None:
        self.time_base = time_base
        self.arrival_timed = arrival_timed
        self.paced = paced and not arrival_timed
        self.synchronous = synchronous
        self.epoch_mono = epoch_mono
        self.first_pts: float | None = None
        self.offset = 0.0
        self.pace_origin = epoch_mono

    def _own(self, pts: int | None) -> float | None:
        if self.arrival_timed or pts is None or self.time_base is None:
            return None
        return float(pts * self.time_base)

    def seconds(self, pts: int | None, arrived: float) -> float:
        own = self._own(pts)
        if own is None:
            return arrived - self.epoch_mono
        if self.first_pts is None:
            self.first_pts = own
            if not self.synchronous:
                self.offset = arrived - self.epoch_mono
                self.pace_origin = arrived
        return self.offset + own - self.first_pts

    def delay(self, pts: int | None) -> float:
        """How long until a paced source's packet or frame is due (0 when not paced)."""
        own = self._own(pts)
        if not self.paced or own is None or self.first_pts is None:
            return 0.0
        return self.pace_origin + (own - self.first_pts) - time.monotonic()


class SourceEndedEarly(Exception):
    pass


class FrameSink(Protocol):
    """Where the feed puts frames: the segmenter's add_frame, called from the reader thread."""

    def __call__(
        self, seconds: float, image: np.ndarray | None, *, ticks: Sequence[float] | None = None
    ) -> None: ...


class DetectFeed:
    """The reader's side of a camera's detect stream during one session of its main stream.

    Used from the reader thread only. `before_packet` is called for every main packet before
    the segmenter sees it: it waits (at most `lag_timeout`) until the detect stream has caught
    up with the packet, so a window never closes before its analysis frames are in, and says
    whether the reader must decode the main packet itself (the detect stream is unavailable).
    """

    def __init__(
        self,
        analysis_uri: str,
        *,
        main: Source,
        clip_index: int,
        fps: float,
        convert: Callable[[Any], np.ndarray],
        on_unavailable: Callable[[str | None], None],
        read_timeout: float,
        backoff_initial: float,
        backoff_max: float,
        name: str,
        totals: IngestTotals | None = None,
    ) -> None:
        self.analysis_uri = analysis_uri
        self.main = main
        self.clip_index = clip_index
        self.fps = fps
        self.convert = convert
        # Called with the (redacted) reason when the reader falls back to the main stream,
        # and with None when the detect stream serves again.
        self.on_unavailable = on_unavailable
        self.lag_timeout = read_timeout
        self.read_timeout = read_timeout
        self.backoff_initial = backoff_initial
        self.backoff = backoff_initial
        self.backoff_max = backoff_max
        self.name = name
        self.totals = totals if totals is not None else INGEST_TOTALS
        self.stream: AnalysisStream | None = None
        self.epoch_mono: float | None = None
        self.fallback = False  # the reader decodes the main stream for analysis
        self.serving = False  # the detect stream has delivered frames in this session
        self.keyframe_seen = False  # since the fallback began: decoding starts at a keyframe
        self.retry_at = 0.0
        self.unavailable: str | None = None
        self._last_tick = float("-inf")
        # A file main stream with a file detect stream: both replayed from their start at the
        # same moment, on one clock (else the detect stream is mapped by arrival).
        self.replayed_pair = self._replayed_pair(main, analysis_uri)
        # Set by the reader: the shard is behind, the detect stream reads without decoding.
        self._shedding = False
        # Main-clock times of detect packets left undecoded for that, as long as a window may
        # still ask about them (`shed_in`).
        self._shed: deque[float] = deque()
        # Counters the tests read.
        self.main_packets_decoded = 0
        self.frames_from_detect = 0
        self.frames_shed = 0

    @staticmethod
    def _replayed_pair(main: Source, analysis_uri: str) -> bool:
        try:
            return main.type.loops and parse_source_uri(analysis_uri).type.loops
        except SourceError:
            return False

    def begin(self, epoch_mono: float) -> None:
        """The main stream's first keyframe arrived at `epoch_mono`: start the detect stream."""
        self.epoch_mono = epoch_mono
        self._start_stream()

    def _start_stream(self) -> None:
        assert self.epoch_mono is not None
        try:
            source = parse_source_uri(self.analysis_uri)
            clip: Path | None = None
            if source.type.loops:
                clips = clips_of(source)
                clip = clips[self.clip_index % len(clips)]
        except SourceError as error:
            self._fall_back(f"Bad detect stream: {error}")
            return
        self.stream = AnalysisStream(
            source,
            clip=clip,
            fps=self.fps,
            convert=self.convert,
            epoch_mono=self.epoch_mono,
            synchronous=self.replayed_pair,
            read_timeout=self.read_timeout,
            name=f"{self.name}-detect",
            totals=self.totals,
        )
        self.stream.shedding = self._shedding
        self.stream.start()

    @property
    def shedding(self) -> bool:
        return self._shedding

    @shedding.setter
    def shedding(self, value: bool) -> None:
        """The reader's DecodeShedder verdict for the packet at hand, passed on to the thread
        that decodes: the detect stream's decoding is what a shard behind must give up."""
        self._shedding = value
        if self.stream is not None:
            self.stream.shedding = value

    def shed_in(self, start: float, end: float) -> bool:
        """Whether detect frames in [start, end) (main clock) were left undecoded because the
        shard was behind: the window is stored for analysis later, as the main path's."""
        return any_within(self._shed, start, end)

    def before_packet(self, seconds: float, keyframe: bool, add_frame: FrameSink) -> bool:
        """Hand the detect frames up to `seconds` to `add_frame`; True when the reader must
        decode this main packet for analysis itself."""
        stream = self.stream
        if stream is not None and not self.fallback:
            caught_up = stream.wait_past(seconds, self.lag_timeout)
            # Frames before this packet only, as a decoder would have given them by now: the
            # segmenter starts its clock at the first packet.
            self._drain(stream, add_frame, before=seconds)
            if not self.serving and stream.packets_read:
                # Serving (again, after a session that fell back): the detail says so.
                self.serving = True
                self.on_unavailable(None)
            if not caught_up:
                if stream.failure is not None:
                    self._fall_back(stream.failure)
                elif not stream.ended:
                    self._fall_back(
                        f"the detect stream fell more than {self.lag_timeout:g} s behind"
                    )
                elif seconds > stream.progress + ENDED_EARLY_SECONDS:
                    # A replayed detect clip ends with its main clip, give or take a frame;
                    # one much shorter leaves the rest of the main clip to the main stream.
                    self._fall_back("the detect clip is shorter than the main clip")
        elif self.fallback:
            if stream is not None:
                if stream.packets_read and stream.failure is None:
                    # Back: its frames take over from the main stream's from here on.
                    self.fallback = False
                    self.serving = True
                    self.backoff = self.backoff_initial
                    self.unavailable = None
                    self.on_unavailable(None)
                    self._drain(stream, add_frame, before=seconds)
                    return False
                if stream.finished:
                    self.stream = None
                    self._schedule_retry()
            elif not self.replayed_pair and time.monotonic() >= self.retry_at:
                # A live pair retries within the session; a replayed file pair retries when
                # the main clip plays again (a new session), so both restart together.
                self._start_stream()
        if not self.fallback:
            return False
        self.keyframe_seen = self.keyframe_seen or keyframe
        if self.keyframe_seen:
            self.main_packets_decoded += 1
        return self.keyframe_seen

    def ticks_after_detect(self, ticks: Sequence[float]) -> list[float]:
        """The ticks of a main-stream frame not already filled by the detect stream."""
        kept = [tick for tick in ticks if tick > self._last_tick]
        if kept:
            self._last_tick = kept[-1]
        return kept

    def close(self, last_seconds: float | None, add_frame: FrameSink) -> None:
        """The main session ends: take the detect frames up to its last packet, then stop."""
        stream = self.stream
        if stream is None:
            return
        if not self.fallback:
            # `last_seconds` None: the main stream broke off; what has arrived is kept.
            if last_seconds is not None:
                stream.wait_past(last_seconds, self.lag_timeout)
            self._drain(stream, add_frame)
        stream.stop()
        # A file closes at once; a live read blocked on the network ends at its own timeout,
        # and the main stream's next session does not wait for it.
        stream.join(min(1.0, self.read_timeout))
        self.stream = None

    def stop(self) -> None:
        if self.stream is not None:
            self.stream.stop()

    def _drain(
        self, stream: AnalysisStream, add_frame: FrameSink, *, before: float = float("inf")
    ) -> None:
        for frame in stream.take(before):
            if frame.shed:
                self._shed.append(frame.seconds)
                self.frames_shed += 1
                self.totals.add(frames_shed=1)
                # Still a frame the camera sent (the window's frame count).
                add_frame(frame.seconds, None, ticks=())
                continue
            ticks = self.ticks_after_detect(frame.ticks)
            if frame.ticks and not ticks:
                continue  # its ticks were filled by the main stream meanwhile
            self.frames_from_detect += 1
            add_frame(frame.seconds, frame.image if ticks else None, ticks=ticks)

    def _fall_back(self, reason: str) -> None:
        if self.stream is not None:
            # A stalled thread ends at its own read timeout; it is never asked for frames again.
            self.stream.stop()
            self.stream = None
        self.fallback = True
        self.serving = False
        self.keyframe_seen = False
        self.unavailable = redact(reason)
        logger.warning(
            "%s: detect stream unavailable (%s); analysing the main stream",
            self.name,
            self.unavailable,
        )
        self.on_unavailable(self.unavailable)
        self._schedule_retry()

    def _schedule_retry(self) -> None:
        self.retry_at = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, self.backoff_max)


__all__ = ["AnalysisFrame", "AnalysisStream", "DetectFeed"]
