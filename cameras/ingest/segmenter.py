"""Cut a timestamped stream into analysis windows (pure logic: no I/O, no Django).

A window is [start, start + length). Its original keeps every packet from the last keyframe at
or before `start` up to `end`, so each stored file decodes on its own without re-encoding: with
a camera GOP longer than the window, neighbouring originals share a few lead-in packets.
Windows follow each other every `length - overlap` seconds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cameras.ingest.media import PacketRecord

MIN_GAP_SECONDS = 10.0
# Decode order may put a frame a little before the one shown ahead of it (B-frames).
BACKWARD_TOLERANCE_SECONDS = 1.0


class StreamDiscontinuity(Exception):
    """The stream can no longer be cut into windows as it goes: the reader starts it again."""


@dataclass
class Window:
    start: float
    end: float
    packets: list[PacketRecord]
    frames: list[np.ndarray] = field(default_factory=list)
    # Every decoded source frame inside the window, not only the analysis ones.
    source_frames: int = 0
    # Every frame the camera sent inside the window (its packets), decoded or not: fewer
    # decoded than sent means the reader's motion gate left (part of) the window undecoded.
    sent_frames: int = 0


class Segmenter:
    def __init__(self, *, length: float, overlap: float = 0.0, min_fraction: float = 0.5) -> None:
        if length <= 0 or not 0 <= overlap < length:
            raise ValueError("a window needs length > 0 and 0 <= overlap < length")
        self.length = length
        self.stride = length - overlap
        # At a stream's end a partial window is kept when it covers this fraction of a window:
        # looped 1.9-s demo clips and a camera that drops mid-window still give their footage.
        self.min_fraction = min_fraction
        self._packets: deque[PacketRecord] = deque()
        self._frames: deque[tuple[float, np.ndarray]] = deque()
        self._source_frame_times: deque[float] = deque()
        self._start: float | None = None
        self._last_seconds = 0.0
        self._frame_step = 0.04
        # The most a window's original may reach back for its keyframe, and the largest jump
        # of timestamps taken as the same stream. Beyond them the buffer would grow without
        # end (a stream with one keyframe) or stop closing windows (timestamps gone back).
        self.max_gap_seconds = max(MIN_GAP_SECONDS, 4 * length)

    def add_packet(self, packet: PacketRecord) -> list[Window]:
        """Add a packet (decode order); returns the windows this packet closes.

        Raises StreamDiscontinuity when the stream cannot go on as one: its timestamps went
        back or leapt ahead, or no keyframe came for `max_gap_seconds`. Nothing closed earlier
        is lost; `flush()` then keeps the partial window.
        """
        if self._start is None:
            if not packet.keyframe:
                return []  # Nothing before the first keyframe can be decoded or stored.
            self._start = packet.seconds
            self._last_seconds = max(self._last_seconds, packet.seconds)
        else:
            self._check_continuity(packet)
        closed: list[Window] = []
        # A packet at or past the window's end proves every earlier frame has arrived (no
        # B-frames reorder across a window on the streams cameras send).
        while packet.seconds >= self._start + self.length:
            closed.append(self._cut(self._start + self.length))
            self._advance()
        self._packets.append(packet)
        if packet.seconds > self._last_seconds:
            if self._last_seconds:
                self._frame_step = min(1.0, max(0.001, packet.seconds - self._last_seconds))
            self._last_seconds = packet.seconds
        return closed

    def _check_continuity(self, packet: PacketRecord) -> None:
        assert self._start is not None
        if packet.seconds < self._last_seconds - BACKWARD_TOLERANCE_SECONDS:
            raise StreamDiscontinuity(
                f"timestamps went back {self._last_seconds - packet.seconds:.1f} s"
            )
        if packet.seconds > self._last_seconds + self.max_gap_seconds:
            raise StreamDiscontinuity(
                f"timestamps leapt {packet.seconds - self._last_seconds:.0f} s ahead"
            )
        if self._packets and self._start - self._packets[0].seconds > self.max_gap_seconds:
            raise StreamDiscontinuity(
                f"no keyframe for over {self.max_gap_seconds:.0f} s (set the camera's keyframe "
                f"interval to at most {self.max_gap_seconds:.0f} s)"
            )

    @property
    def open_since(self) -> float | None:
        """Start of the earliest window still open (None before the first keyframe)."""
        return self._start

    def add_frame(
        self, seconds: float, image: np.ndarray | None, *, ticks: Sequence[float] | None = None
    ) -> None:
        """A decoded frame; `image` is given only for frames kept at the analysis rate.

        `ticks`: the analysis ticks (seconds, on the packets' clock) the frame fills as
        `ml.frames` decides, so a slow source's frame is kept once per tick it stands for and
        a window holds the ticks inside it; default: the frame's own time, once.
        """
        if self._start is None or seconds < self._start:
            return
        self._source_frame_times.append(seconds)
        if image is not None:
            for tick in [seconds] if ticks is None else ticks:
                if tick >= self._start:
                    self._frames.append((tick, image))

    def flush(self) -> list[Window]:
        """The stream ended: keep the partial window if it is long enough, then reset."""
        windows: list[Window] = []
        if self._start is not None and self._packets:
            end = self._last_seconds + self._frame_step
            # Kept even without analysis frames: a still stretch the reader did not decode is
            # footage all the same.
            if end - self._start >= self.length * self.min_fraction:
                windows.append(self._cut(end))
        self._packets.clear()
        self._frames.clear()
        self._source_frame_times.clear()
        self._start = None
        self._last_seconds = 0.0
        return windows

    def _cut(self, end: float) -> Window:
        assert self._start is not None
        start = self._start
        lead = 0
        for index, packet in enumerate(self._packets):
            if packet.seconds > start + 1e-6:
                break
            if packet.keyframe:
                lead = index
        packets = [p for i, p in enumerate(self._packets) if i >= lead and p.seconds < end]
        frames = [image for seconds, image in self._frames if start <= seconds < end]
        count = sum(1 for seconds in self._source_frame_times if start <= seconds < end)
        sent = sum(1 for packet in packets if start <= packet.seconds < end)
        return Window(
            start=start,
            end=end,
            packets=packets,
            frames=frames,
            source_frames=count,
            sent_frames=sent,
        )

    def _advance(self) -> None:
        assert self._start is not None
        self._start += self.stride
        start = self._start
        # Keep packets from the keyframe that the next window's original must start with.
        keep_from = 0
        for index, packet in enumerate(self._packets):
            if packet.seconds > start + 1e-6:
                break
            if packet.keyframe:
                keep_from = index
        for _ in range(keep_from):
            self._packets.popleft()
        while self._frames and self._frames[0][0] < start:
            self._frames.popleft()
        while self._source_frame_times and self._source_frame_times[0] < start:
            self._source_frame_times.popleft()
