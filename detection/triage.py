"""From a scored window to a decision about the camera's case: a pure function, no database.

Consecutive non-safe windows of one camera (closer than the merge gap) are one Case: the first
opens it, later ones extend it. A violent window must bring the case to the police at once,
also when it upgrades an uncertain case. A safe window joins a case only as its post-roll.
`detection.pipeline.apply_decision` carries a `Decision` out.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from detection.bands import Band, band_for


@dataclass(frozen=True)
class Thresholds:
    low: float
    high: float


def thresholds_for(
    *, camera_low: float | None, camera_high: float | None, model_low: float, model_high: float
) -> Thresholds:
    """The camera's own thresholds where set, else the model version's."""
    high = camera_high if camera_high is not None else model_high
    low = camera_low if camera_low is not None else model_low
    # A camera that sets only a high threshold below the model's low one means "report above
    # high": nothing is left for review rather than an impossible band.
    return Thresholds(low=min(low, high), high=high)


@dataclass(frozen=True)
class ScoredWindow:
    segment_id: int
    started_at: dt.datetime
    ended_at: dt.datetime
    score: float


@dataclass(frozen=True)
class OpenCase:
    """A case of the camera that a new non-safe window may still join."""

    id: int
    started_at: dt.datetime
    ended_at: dt.datetime
    peak_score: float
    band: str
    reported: bool


class Action(enum.StrEnum):
    NOTHING = "nothing"
    ATTACH = "attach"  # a safe window in a case's post-roll: footage only
    OPEN = "open"
    EXTEND = "extend"


@dataclass(frozen=True)
class Decision:
    band: Band
    action: Action
    case_id: int | None = None  # the case to attach to or extend; None when opening one
    started_at: dt.datetime | None = None  # the case's span and peak after this window
    ended_at: dt.datetime | None = None
    peak_score: float = 0.0
    case_band: str = ""
    report: bool = False  # the case must reach the police now
    upgraded: bool = False  # an unreported case became violent


def nearest_open_case(
    window: ScoredWindow, open_cases: Sequence[OpenCase], *, merge_gap: dt.timedelta
) -> OpenCase | None:
    near = [
        case
        for case in open_cases
        if case.ended_at >= window.started_at - merge_gap
        and case.started_at <= window.ended_at + merge_gap
    ]
    return max(near, key=lambda case: case.ended_at, default=None)


def triage(
    *,
    thresholds: Thresholds,
    open_cases: Sequence[OpenCase],
    window: ScoredWindow,
    merge_gap: dt.timedelta,
    post_roll: dt.timedelta,
) -> Decision:
    band = band_for(window.score, low=thresholds.low, high=thresholds.high)
    near = nearest_open_case(window, open_cases, merge_gap=merge_gap)
    if band == Band.SAFE:
        in_post_roll = (
            near is not None
            and window.started_at < near.ended_at + post_roll
            and window.ended_at > near.started_at
        )
        if near is not None and in_post_roll:
            return Decision(band=band, action=Action.ATTACH, case_id=near.id)
        return Decision(band=band, action=Action.NOTHING)
    if near is None:
        return Decision(
            band=band,
            action=Action.OPEN,
            started_at=window.started_at,
            ended_at=window.ended_at,
            peak_score=window.score,
            case_band=band,
            report=band == Band.VIOLENT,
        )
    case_band = Band.VIOLENT if band == Band.VIOLENT else near.band
    must_report = case_band == Band.VIOLENT and not near.reported
    return Decision(
        band=band,
        action=Action.EXTEND,
        case_id=near.id,
        started_at=min(near.started_at, window.started_at),
        ended_at=max(near.ended_at, window.ended_at),
        peak_score=max(near.peak_score, window.score),
        case_band=case_band,
        report=must_report,
        upgraded=must_report,
    )
