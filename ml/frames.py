"""The one rule that turns decoded frames into analysis frames at the model's rate.

Every path from a camera or a file to the model (``ml.video.decode_frames`` for training and
evaluation, the live camera reader, edge uploads) resamples decoded frames to the analysis
rate ``fps`` by their presentation timestamps with this module, so the live system sees the
frames training saw.

The rule. Analysis ticks lie at ``origin + k / fps`` (``origin``: the first frame's timestamp
unless given). Each tick is filled by the first decoded frame whose timestamp is at or after
it (within ``EPSILON``): a frame fills every tick since the previous frame up to its own
timestamp.

- Fast sources (30 fps at 10 fps): most frames fill no tick and are dropped.
- Slow sources (5 fps at 10 fps): a frame fills two ticks, i.e. it is REPEATED. Repeating
  rather than dropping keeps one analysis frame per tick whatever the source rate, so a window
  of ``window_seconds`` always holds ``fps * window_seconds`` frames and a window cut by time
  (live) and one cut by frame count (offline) are the same frames. Dropping would make a
  16-frame window span 3.2 s of a 5-fps camera offline but 1.6 s live.
- Gaps: a frame more than ``max_gap_seconds`` after the previous one fills only the last tick
  at or before it; the ticks of the gap stay empty (nothing seen is not made up by stretching a
  frame over seconds). Live, such a gap also ends the reader's session.
- Duplicated or backward timestamps fill no tick (the tick is already filled).
- Jitter smaller than a tick moves no frame across more than one tick.

``FrameSampler`` applies it one frame at a time (live reader, edge upload);
``sample_frames`` and ``window_slots`` over a whole list of timestamps (files).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_MAX_GAP_SECONDS",
    "EPSILON",
    "FrameSampler",
    "Slot",
    "sample_frames",
    "window_slots",
]

# Timestamps are rationals in the container's time base; 1 microsecond absorbs the rounding of
# a 1/90000 or 1001/30000 time base when it is turned into float seconds.
EPSILON = 1e-6
# A camera that stalls for more than a second has lost frames, not slowed down.
DEFAULT_MAX_GAP_SECONDS = 1.0


@dataclass(frozen=True)
class Slot:
    """One analysis frame: the tick it stands for and the decoded frame that fills it."""

    tick: int  # k of origin + k / fps
    seconds: float  # the tick's time, relative to the origin
    frame: int  # index of the decoded frame (in the order frames were offered)


class FrameSampler:
    """Stateful form of the rule for a stream: offer each decoded frame's timestamp once.

    >>> sampler = FrameSampler(10.0)
    >>> [sampler.keep(t) for t in (0.0, 0.2, 0.4)]  # a 5-fps source: repeated
    [1, 2, 2]
    """

    def __init__(
        self,
        fps: float,
        *,
        origin: float | None = None,
        max_gap_seconds: float = DEFAULT_MAX_GAP_SECONDS,
    ) -> None:
        if not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps must be a positive number, got {fps}")
        if max_gap_seconds <= 0:
            raise ValueError(f"max_gap_seconds must be positive, got {max_gap_seconds}")
        self.fps = float(fps)
        self.origin = origin
        self.max_gap_seconds = float(max_gap_seconds)
        self.next_tick = 0  # the first tick not yet filled
        self.frames_offered = 0
        self._previous: float | None = None

    def tick_seconds(self, tick: int) -> float:
        """Time of tick ``tick`` relative to the origin."""
        return tick / self.fps

    def slots(self, pts_seconds: float) -> list[Slot]:
        """Offer the next decoded frame; returns the analysis slots it fills (maybe none)."""
        if not math.isfinite(pts_seconds):
            raise ValueError(f"a frame timestamp must be finite, got {pts_seconds}")
        index = self.frames_offered
        self.frames_offered += 1
        if self.origin is None:
            self.origin = pts_seconds
        elapsed = pts_seconds - self.origin
        # The last tick at or before this frame (a frame may sit EPSILON early of its tick).
        last = math.floor((elapsed + EPSILON) * self.fps)
        if self._previous is not None and pts_seconds - self._previous > self.max_gap_seconds:
            self.next_tick = max(self.next_tick, last)
        if pts_seconds > (self._previous if self._previous is not None else -math.inf):
            self._previous = pts_seconds
        filled = [
            Slot(tick, self.tick_seconds(tick), index) for tick in range(self.next_tick, last + 1)
        ]
        self.next_tick = max(self.next_tick, last + 1)
        return filled

    def keep(self, pts_seconds: float) -> int:
        """Offer the next decoded frame; returns how many analysis slots it fills (0: drop it,
        1: keep it, 2+: keep it that many times in a row)."""
        return len(self.slots(pts_seconds))


def sample_frames(
    pts_seconds: Sequence[float],
    fps: float,
    *,
    origin: float | None = None,
    max_gap_seconds: float = DEFAULT_MAX_GAP_SECONDS,
) -> list[Slot]:
    """Every analysis slot of a stream of decoded frames with these timestamps, in order."""
    sampler = FrameSampler(fps, origin=origin, max_gap_seconds=max_gap_seconds)
    slots: list[Slot] = []
    for seconds in pts_seconds:
        slots.extend(sampler.slots(seconds))
    return slots


def window_slots(
    pts_seconds: Sequence[float],
    fps: float,
    start: float,
    end: float,
    *,
    origin: float | None = None,
    max_gap_seconds: float = DEFAULT_MAX_GAP_SECONDS,
) -> list[Slot]:
    """The slots a window ``[start, end)`` (seconds from the origin) holds: those whose tick
    lies in it. ``[slot.frame for slot in ...]`` indexes the decoded frames."""
    if end < start:
        raise ValueError(f"a window ends after it starts, got [{start}, {end})")
    return [
        slot
        for slot in sample_frames(pts_seconds, fps, origin=origin, max_gap_seconds=max_gap_seconds)
        if start - EPSILON <= slot.seconds < end - EPSILON
    ]
