"""Score timelines drawn as SVG bars: one bar per analysis window, coloured by its band."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

WIDTH = 1000.0
HEIGHT = 100.0


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    y: float
    height: float
    band: str
    score: float
    start: float
    end: float
    segment: int
    highlight: bool


def timeline_bars(
    windows: Iterable[tuple[float, float, float, str, int, bool]],
    *,
    start: float | None = None,
    end: float | None = None,
) -> list[Bar]:
    """Place windows (start s, end s, score, band, segment id, highlight) on a 1000x100 box."""
    items = list(windows)
    if not items:
        return []
    t0 = min(w[0] for w in items) if start is None else start
    t1 = max(w[1] for w in items) if end is None else end
    span = max(t1 - t0, 1e-6)
    bars = []
    for w_start, w_end, score, band, segment, highlight in items:
        x = (w_start - t0) / span * WIDTH
        width = max((w_end - w_start) / span * WIDTH - 0.5, 0.8)
        height = max(score, 0.02) * HEIGHT
        bars.append(
            Bar(
                x=round(x, 2),
                width=round(width, 2),
                y=round(HEIGHT - height, 2),
                height=round(height, 2),
                band=band,
                score=score,
                start=w_start,
                end=w_end,
                segment=segment,
                highlight=highlight,
            )
        )
    return bars
