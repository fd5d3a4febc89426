"""Window features of poses: tracks, limb speeds, reaching another person, falls, empty input."""

from __future__ import annotations

import numpy as np
import pytest

from ml.pose import FramePoses
from ml.pose_features import (
    FEATURE_NAMES,
    L_WRIST,
    VIEW_FEATURE_NAMES,
    clip_view_window_features,
    clip_window_features,
    link_tracks,
    window_features,
    window_starts,
    window_view_features,
)

FPS = 7.5

# A standing person 100 px tall (torso ~33 px), COCO order, relative to the box's top left.
_SKELETON = np.array(
    [
        [20, 8], [18, 6], [22, 6], [16, 8], [24, 8],  # head
        [12, 22], [28, 22], [10, 36], [30, 36], [9, 50], [31, 50],  # arms
        [14, 55], [26, 55], [14, 75], [26, 75], [14, 98], [26, 98],  # legs
    ],
    dtype=np.float32,
)  # fmt: skip


def person(x: float, y: float, wrist: tuple[float, float] | None = None) -> np.ndarray:
    points = _SKELETON + np.array([x, y], np.float32)
    if wrist is not None:
        points[L_WRIST] = wrist
    return np.concatenate([points, np.full((17, 1), 0.8, np.float32)], axis=1)


def frame_of(*people: np.ndarray) -> FramePoses:
    if not people:
        return FramePoses.empty((640, 360))
    keypoints = np.stack(people).astype(np.float32)
    boxes = np.stack([np.r_[p[:, :2].min(0) - 2, p[:, :2].max(0) + 2] for p in people]).astype(
        np.float32
    )
    return FramePoses(keypoints, boxes, np.full(len(people), 0.5, np.float32), (640, 360))


def feature(vector: np.ndarray, name: str) -> float:
    return float(vector[FEATURE_NAMES.index(name)])


def test_vector_length_names_and_signs_for_an_empty_window() -> None:
    vector = window_features([frame_of() for _ in range(12)], FPS)
    assert vector.shape == (len(FEATURE_NAMES),) and len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert vector.dtype == np.float32 and np.isfinite(vector).all() and (vector >= 0).all()
    assert feature(vector, "people_max") == 0 and feature(vector, "empty_frac") == 1
    assert feature(vector, "pair_reach_min_top") == 8.0  # nobody near anybody


def test_zero_and_one_frame_windows_give_a_vector() -> None:
    assert window_features([], FPS).shape == (len(FEATURE_NAMES),)
    assert window_features([frame_of(person(100, 100))], FPS).shape == (len(FEATURE_NAMES),)
    with pytest.raises(ValueError, match="fps"):
        window_features([], 0)


def test_tracks_follow_people_whose_order_changes_between_frames() -> None:
    frames = []
    for t in range(8):
        a, b = person(100 + 3 * t, 100), person(400 - 3 * t, 120)
        frames.append(frame_of(a, b) if t % 2 else frame_of(b, a))
    tracks = link_tracks(frames)
    assert len(tracks) == 2
    for track in tracks:
        xs = track.keypoints[:, 0, 0]
        assert track.present.all()
        assert np.all(np.abs(np.diff(xs)) == pytest.approx(3.0, abs=1e-3))


def test_a_person_who_leaves_and_a_new_one_far_away_are_separate_tracks() -> None:
    frames = [frame_of(person(100, 100)) for _ in range(3)] + [
        frame_of(person(500, 200)) for _ in range(3)
    ]
    assert len(link_tracks(frames)) == 2


def test_a_wrist_swinging_at_anothers_head_scores_above_two_people_standing() -> None:
    calm = [frame_of(person(100, 100), person(150, 100)) for _ in range(12)]
    strike = []
    for t in range(12):
        # Person A's wrist swings out to B's head and back, 3 frames each way.
        phase = abs((t % 6) - 3) / 3
        wrist = (109 + phase * (170 - 109), 150 + phase * (108 - 150))
        strike.append(frame_of(person(100, 100, wrist=wrist), person(150, 100)))
    calm_v, strike_v = window_features(calm, FPS), window_features(strike, FPS)
    assert feature(strike_v, "pair_reach_min_top") < 0.3 < feature(calm_v, "pair_reach_min_top")
    assert feature(strike_v, "pair_strike_speed_top") > 3 * max(
        feature(calm_v, "pair_strike_speed_top"), 0.1
    )
    assert feature(strike_v, "track_wrist_speed_max_top") > 2.0
    assert feature(calm_v, "track_wrist_speed_max_top") == pytest.approx(0.0, abs=1e-6)
    assert feature(strike_v, "pair_reach_frac_top") > 0


def test_a_falling_person_shows_a_head_drop_and_a_tilt_change() -> None:
    frames = []
    for t in range(12):
        angle = min(t, 6) / 6 * (np.pi / 2)  # from upright to lying in six frames
        points = person(0, 0)
        pivot = points[15, :2]  # rotate about an ankle
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        points[:, :2] = (points[:, :2] - pivot) @ rotation.T + pivot + np.array([200, 100])
        frames.append(frame_of(points))
    upright = window_features([frame_of(person(200, 100)) for _ in range(12)], FPS)
    fall = window_features(frames, FPS)
    assert feature(fall, "track_head_drop_top") > 1.5
    assert feature(fall, "track_tilt_range_top") > 1.2
    assert feature(upright, "track_head_drop_top") == pytest.approx(0.0, abs=1e-6)


def test_speeds_are_relative_to_body_size() -> None:
    def walking(scale: float) -> list[FramePoses]:
        frames = []
        for t in range(12):
            points = person(0, 0)
            points[:, :2] = points[:, :2] * scale + np.array([50 + 10 * scale * t, 50])
            frames.append(frame_of(points))
        return frames

    near, far = window_features(walking(2.0), FPS), window_features(walking(0.5), FPS)
    assert feature(near, "track_centre_speed_max_top") == pytest.approx(
        feature(far, "track_centre_speed_max_top"), rel=0.05
    )


def test_crowds_and_jittery_poses_stay_finite() -> None:
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(12):
        people = [person(*rng.uniform(0, 500, 2)) for _ in range(6)]
        for p in people:
            p[:, :2] += rng.normal(0, 30, (17, 2))
            p[:, 2] = rng.uniform(0, 1, 17)
        frames.append(frame_of(*people))
    vector = window_features(frames, FPS)
    assert np.isfinite(vector).all() and (vector >= 0).all()


def test_window_starts_cover_the_clip() -> None:
    assert window_starts(5, 7.5, 1.6, 0.8) == [0]  # shorter than a window
    assert window_starts(12, 7.5, 1.6, 0.8) == [0]
    assert window_starts(16, 7.5, 1.6, 0.8) == [0, 4]  # the end is covered
    assert window_starts(30, 7.5, 1.6, 0.8) == [0, 6, 12, 18]
    clip = [frame_of(person(100, 100)) for _ in range(16)]
    assert clip_window_features(clip, 7.5, hop_seconds=0.8).shape == (2, len(FEATURE_NAMES))
    assert clip_window_features(clip, 7.5).shape == (3, len(FEATURE_NAMES))  # 0.4 s hop


def test_view_features_put_both_views_side_by_side() -> None:
    whole = [frame_of(person(100, 100)) for _ in range(12)]
    tiled = [frame_of(person(100, 100), person(300, 100)) for _ in range(12)]
    vector = window_view_features(whole, tiled, FPS)
    assert vector.shape == (len(VIEW_FEATURE_NAMES),) == (2 * len(FEATURE_NAMES),)
    assert vector[VIEW_FEATURE_NAMES.index("whole_people_max")] == 1
    assert vector[VIEW_FEATURE_NAMES.index("tiled_people_max")] == 2
    with pytest.raises(ValueError, match="different lengths"):
        window_view_features(whole, tiled[:5], FPS)
    clip = clip_view_window_features(whole + whole, tiled + tiled, FPS)
    assert clip.shape == (5, len(VIEW_FEATURE_NAMES))  # 24 frames: starts 0, 3, 6, 9, 12
