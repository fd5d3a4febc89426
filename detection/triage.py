"""From a scored window to a decision about the camera's case: a pure function, no database.

Consecutive non-safe windows of one camera (closer than the merge gap) are one Case: the first
opens it, later ones extend it. A violent window must bring the case to the police at once,
also when it upgrades an uncertain case. A safe window joins a case only as its post-roll.

A case ends (its span is closed for good) when:
- a quiet period (the merge gap) passes with no non-safe window: any later window of the camera
  closes it, safe or not;
- it would grow past the maximum length: the window opens a follow-up case linked to it;
- it has been reported to the police: what they received must not change under them, so later
  activity opens a follow-up case linked to the reported one.
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
    # Its span already ended (reported or at its maximum length): never extended again, but
    # new activity next to it opens a follow-up linked to it.
    span_ended: bool = False
    # A follow-up of a case already reported: the police hold the incident, and this case
    # carries what went on after it. It is reported once, when its own span ends (quiet or at
    # its maximum length), not at its first violent window: during continuous violence that
    # would send the police a new report every few seconds.
    follows_reported: bool = False


class CloseReason(enum.StrEnum):
    QUIET = "quiet"  # no non-safe window for the quiet period
    MAX_LENGTH = "max_length"  # the case reached its maximum length
    REPORTED = "reported"  # sent to the police: its span is frozen


@dataclass(frozen=True)
class Closing:
    case_id: int
    reason: CloseReason


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
    follows_id: int | None = None  # the ended case a newly opened one continues
    closings: tuple[Closing, ...] = ()  # cases whose span ends now (before the action)


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


def _closings(
    window: ScoredWindow,
    open_cases: Sequence[OpenCase],
    *,
    merge_gap: dt.timedelta,
    max_length: dt.timedelta | None,
    band: Band,
) -> tuple[Closing, ...]:
    """The open cases whose span this window ends, and why."""
    closings: list[Closing] = []
    for case in open_cases:
        if case.span_ended:
            continue
        if case.reported:
            closings.append(Closing(case.id, CloseReason.REPORTED))
        elif window.started_at - case.ended_at > merge_gap:
            closings.append(Closing(case.id, CloseReason.QUIET))
        elif (
            band != Band.SAFE
            and max_length is not None
            and max(case.ended_at, window.ended_at) - case.started_at > max_length
        ):
            closings.append(Closing(case.id, CloseReason.MAX_LENGTH))
    return tuple(closings)


def triage(
    *,
    thresholds: Thresholds,
    open_cases: Sequence[OpenCase],
    window: ScoredWindow,
    merge_gap: dt.timedelta,
    post_roll: dt.timedelta,
    max_length: dt.timedelta | None = None,
) -> Decision:
    band = band_for(window.score, low=thresholds.low, high=thresholds.high)
    closings = _closings(window, open_cases, merge_gap=merge_gap, max_length=max_length, band=band)
    ended = {closing.case_id for closing in closings} | {
        case.id for case in open_cases if case.span_ended
    }
    near = nearest_open_case(window, open_cases, merge_gap=merge_gap)
    if band == Band.SAFE:
        # Footage only: attaching never moves a case's span, so an ended (even a reported)
        # case still keeps the post-roll it is owed.
        in_post_roll = (
            near is not None
            and window.started_at < near.ended_at + post_roll
            and window.ended_at > near.started_at
        )
        if near is not None and in_post_roll:
            return Decision(band=band, action=Action.ATTACH, case_id=near.id, closings=closings)
        return Decision(band=band, action=Action.NOTHING, closings=closings)
    if near is None or near.id in ended:
        return Decision(
            band=band,
            action=Action.OPEN,
            started_at=window.started_at,
            ended_at=window.ended_at,
            peak_score=window.score,
            case_band=band,
            # Activity after a reported incident is reported when its span ends (see
            # OpenCase.follows_reported); anything else violent, at once.
            report=band == Band.VIOLENT and not (near is not None and near.reported),
            # Activity continuing a reported or over-long case is linked to it; after a quiet
            # period it is a new incident.
            follows_id=near.id if near is not None else None,
            closings=closings,
        )
    case_band = Band.VIOLENT if band == Band.VIOLENT else near.band
    must_report = case_band == Band.VIOLENT and not near.reported and not near.follows_reported
    return Decision(
        band=band,
        action=Action.EXTEND,
        case_id=near.id,
        started_at=min(near.started_at, window.started_at),
        ended_at=max(near.ended_at, window.ended_at),
        peak_score=max(near.peak_score, window.score),
        case_band=case_band,
        report=must_report,
        # A band change, not every violent window of a case whose report is still on its way.
        upgraded=case_band == Band.VIOLENT and near.band != Band.VIOLENT,
        closings=closings,
    )
