"""Triage as a pure function: a scored window and the camera's open cases give a decision.

No database, no model: each test takes milliseconds.
"""

from __future__ import annotations

import datetime as dt

import pytest

from detection.bands import Band, band_for
from detection.triage import (
    Action,
    CloseReason,
    OpenCase,
    ScoredWindow,
    Thresholds,
    thresholds_for,
    triage,
)

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


def test_a_reported_case_is_never_extended_so_never_reported_twice():
    # Issue #15: it was extended (and silently grew under the police); now it is frozen and a
    # follow-up case carries the new activity, with its own alert.
    decision = decide(window(8, 0.9), case(0, 6, band="violent", reported=True))
    assert decision.action == Action.OPEN and decision.follows_id == 7


def test_an_uncertain_window_never_downgrades_a_violent_case():
    # Violent but not yet reported (the report is sent after commit).
    decision = decide(window(8, 0.5), case(0, 6, band="violent", reported=False, peak=0.95))
    assert decision.action == Action.EXTEND
    assert decision.case_band == Band.VIOLENT and decision.peak_score == 0.95


def test_the_latest_of_several_near_cases_is_extended():
    older, newer = (
        case(0, 4),
        OpenCase(8, T0, T0 + dt.timedelta(seconds=9), 0.5, "uncertain", False),
    )
    assert decide(window(12, 0.5), older, newer).case_id == 8


# --- Case lifecycle (issue #15): quiet period, maximum length, frozen once reported ----------

MAX = dt.timedelta(seconds=60)


def decide_max(w: ScoredWindow, *cases: OpenCase):
    return triage(
        thresholds=THRESHOLDS,
        open_cases=cases,
        window=w,
        merge_gap=GAP,
        post_roll=POST,
        max_length=MAX,
    )


def test_a_quiet_period_ends_the_case_and_later_activity_is_a_new_unlinked_case():
    # 20 s after the case's last non-safe window: longer than the quiet period (10 s).
    decision = decide_max(window(40, 0.5), case(0, 20))
    assert decision.action == Action.OPEN
    assert decision.follows_id is None
    assert [(c.case_id, c.reason) for c in decision.closings] == [(7, CloseReason.QUIET)]


def test_a_safe_window_after_the_quiet_period_also_ends_the_case():
    decision = decide_max(window(40, 0.05), case(0, 20))
    assert decision.action == Action.NOTHING
    assert [c.reason for c in decision.closings] == [CloseReason.QUIET]


def test_a_window_within_the_quiet_period_ends_nothing():
    decision = decide_max(window(25, 0.05), case(0, 20))
    assert decision.closings == ()
    assert decide_max(window(25, 0.5), case(0, 20)).action == Action.EXTEND


def test_a_case_stops_at_its_maximum_length_and_a_linked_follow_up_continues_it():
    # Continuous activity: the window would stretch the case from 0 to 62 s (> 60 s).
    decision = decide_max(window(60, 0.5), case(0, 59))
    assert decision.action == Action.OPEN
    assert decision.follows_id == 7
    assert [c.reason for c in decision.closings] == [CloseReason.MAX_LENGTH]
    assert (decision.started_at, decision.ended_at) == (
        T0 + dt.timedelta(seconds=60),
        T0 + dt.timedelta(seconds=62),
    )
    # Exactly at the maximum it still extends.
    assert decide_max(window(58, 0.5), case(0, 58)).action == Action.EXTEND


def test_a_safe_window_never_ends_a_case_for_length():
    decision = decide_max(window(60, 0.05), case(0, 59))
    assert decision.closings == ()
    assert decision.action == Action.ATTACH


def test_a_reported_case_is_frozen_and_new_activity_opens_a_linked_follow_up():
    reported = case(0, 10, band="violent", reported=True, peak=0.95)
    decision = decide_max(window(12, 0.9), reported)
    assert decision.action == Action.OPEN
    assert decision.follows_id == 7
    # The police hold the incident: what goes on after it is reported when the follow-up's
    # span ends, not at each violent window (a report every few seconds otherwise).
    assert not decision.report
    assert [c.reason for c in decision.closings] == [CloseReason.REPORTED]
    uncertain_after = decide_max(window(12, 0.5), reported)
    assert uncertain_after.action == Action.OPEN
    assert uncertain_after.follows_id == 7
    assert not uncertain_after.report


def test_a_reported_case_keeps_its_post_roll_footage_but_not_its_span():
    decision = decide_max(window(10.5, 0.05), case(0, 10, band="violent", reported=True))
    assert decision.action == Action.ATTACH
    assert decision.case_id == 7
    assert decision.started_at is None and decision.ended_at is None


def test_without_a_maximum_length_a_long_case_keeps_growing_until_quiet():
    assert decide(window(600, 0.5), case(0, 599)).action == Action.EXTEND


def test_activity_next_to_an_already_frozen_case_opens_a_linked_follow_up():
    frozen = OpenCase(
        7, T0, T0 + dt.timedelta(seconds=10), 0.95, "violent", reported=True, span_ended=True
    )
    decision = decide_max(window(11, 0.5), frozen)
    assert decision.action == Action.OPEN and decision.follows_id == 7
    assert decision.closings == ()  # ended once, not again


def test_ml_and_the_apps_share_one_band_vocabulary_and_one_cut_rule() -> None:
    # The runtime (ml/) bands a fused score for ml.evaluate; the apps band the stored score for
    # triage. Both must name and cut the bands alike, or a window could be "calm" in one place
    # and "safe" in the other.
    from ml.model_card import BANDS, Thresholds

    assert set(BANDS) == set(Band.values)
    cuts = Thresholds(low=0.3, high=0.8, decision=0.5)
    for score in (0.0, 0.29, 0.3, 0.5, 0.79, 0.8, 1.0):
        assert cuts.band(score) == band_for(score, low=0.3, high=0.8).value


def test_a_violent_window_of_an_already_violent_case_is_no_new_upgrade():
    # Until the report task has run, each violent window asks for it again (the task is
    # idempotent), but the case was upgraded once: the audit trail says so once.
    decision = decide(window(8, 0.95), case(0, 6, band=Band.VIOLENT, peak=0.9))
    assert decision.report and not decision.upgraded


def test_a_follow_up_of_a_reported_case_is_not_reported_while_it_grows():
    follow_up = OpenCase(
        8, T0, T0 + dt.timedelta(seconds=6), 0.95, "violent", reported=False, follows_reported=True
    )
    decision = decide(window(8, 0.97), follow_up)
    assert decision.action == Action.EXTEND and decision.case_band == Band.VIOLENT
    assert not decision.report


def test_a_violent_follow_up_of_an_unreported_over_long_case_is_reported_at_once():
    # An uncertain case that reached its maximum length was never reported: violence after it
    # is a new incident for the police.
    over_long = OpenCase(
        7, T0, T0 + dt.timedelta(seconds=10), 0.6, "uncertain", reported=False, span_ended=True
    )
    decision = decide(window(11, 0.95), over_long)
    assert decision.action == Action.OPEN and decision.follows_id == 7 and decision.report
