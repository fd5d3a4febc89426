"""Triage as a pure function: a scored window and the camera's open cases give a decision.

No database, no model: each test takes milliseconds.
"""

from __future__ import annotations

import datetime as dt

import pytest

from detection.bands import Band, band_for
from detection.triage import Action, OpenCase, ScoredWindow, Thresholds, thresholds_for, triage

T0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
GAP = dt.timedelta(seconds=10)
POST = dt.timedelta(seconds=2)
THRESHOLDS = Thresholds(low=0.3, high=0.8)


def window(start_s: float, score: float, seconds: float = 2) -> ScoredWindow:
    start = T0 + dt.timedelta(seconds=start_s)
    return ScoredWindow(1, start, start + dt.timedelta(seconds=seconds), score)


def case(start_s: float, end_s: float, band: str = "uncertain", reported: bool = False, peak=0.5):
    return OpenCase(
        7,
        T0 + dt.timedelta(seconds=start_s),
        T0 + dt.timedelta(seconds=end_s),
        peak,
        band,
        reported,
    )


def decide(w: ScoredWindow, *cases: OpenCase):
    return triage(thresholds=THRESHOLDS, open_cases=cases, window=w, merge_gap=GAP, post_roll=POST)


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (0.0, Band.SAFE),
        (0.2999, Band.SAFE),
        (0.3, Band.UNCERTAIN),
        (0.7999, Band.UNCERTAIN),
        (0.8, Band.VIOLENT),
        (1.0, Band.VIOLENT),
    ],
)
def test_band_mapping_edges(score, band):
    assert band_for(score, low=0.3, high=0.8) == band


def test_one_band_vocabulary():
    assert [b.value for b in Band] == ["violent", "uncertain", "safe"]


def test_camera_thresholds_override_the_models_and_never_cross():
    assert thresholds_for(camera_low=None, camera_high=None, model_low=0.3, model_high=0.8) == (
        Thresholds(0.3, 0.8)
    )
    assert thresholds_for(camera_low=0.1, camera_high=0.9, model_low=0.3, model_high=0.8) == (
        Thresholds(0.1, 0.9)
    )
    # Only a high below the model's low: report above high, nothing left for review.
    assert thresholds_for(camera_low=None, camera_high=0.2, model_low=0.3, model_high=0.8) == (
        Thresholds(0.2, 0.2)
    )


def test_a_safe_window_alone_does_nothing():
    decision = decide(window(0, 0.1))
    assert decision.band == Band.SAFE and decision.action == Action.NOTHING
    assert not decision.report


def test_a_safe_window_in_a_cases_post_roll_is_kept_as_footage():
    decision = decide(window(10, 0.1), case(0, 10))
    assert decision.action == Action.ATTACH and decision.case_id == 7
    assert decide(window(13, 0.1), case(0, 10)).action == Action.NOTHING  # past the post-roll


def test_an_uncertain_window_opens_a_case_for_review():
    decision = decide(window(0, 0.5))
    assert decision.action == Action.OPEN and decision.case_band == Band.UNCERTAIN
    assert not decision.report and decision.peak_score == 0.5
    assert (decision.started_at, decision.ended_at) == (T0, T0 + dt.timedelta(seconds=2))


def test_a_violent_window_opens_a_case_that_must_reach_the_police():
    decision = decide(window(0, 0.95))
    assert decision.action == Action.OPEN and decision.case_band == Band.VIOLENT
    assert decision.report


def test_a_near_window_extends_the_case_instead_of_opening_another():
    decision = decide(window(14, 0.6), case(0, 6, peak=0.7))
    assert decision.action == Action.EXTEND and decision.case_id == 7
    assert decision.started_at == T0 and decision.ended_at == T0 + dt.timedelta(seconds=16)
    assert decision.peak_score == 0.7 and decision.case_band == Band.UNCERTAIN
    assert not decision.report and not decision.upgraded


def test_a_window_beyond_the_merge_gap_opens_a_new_case():
    assert decide(window(17, 0.6), case(0, 6)).action == Action.OPEN


def test_a_violent_window_upgrades_an_unreported_case_and_reports_it():
    decision = decide(window(8, 0.9), case(0, 6))
    assert decision.action == Action.EXTEND and decision.case_band == Band.VIOLENT
    assert decision.report and decision.upgraded and decision.peak_score == 0.9


def test_a_reported_case_is_not_reported_twice():
    decision = decide(window(8, 0.9), case(0, 6, band="violent", reported=True))
    assert decision.action == Action.EXTEND and not decision.report


def test_an_uncertain_window_never_downgrades_a_violent_case():
    decision = decide(window(8, 0.5), case(0, 6, band="violent", reported=True, peak=0.95))
    assert decision.case_band == Band.VIOLENT and decision.peak_score == 0.95


def test_the_latest_of_several_near_cases_is_extended():
    older, newer = (
        case(0, 4),
        OpenCase(8, T0, T0 + dt.timedelta(seconds=9), 0.5, "uncertain", False),
    )
    assert decide(window(12, 0.5), older, newer).case_id == 8
