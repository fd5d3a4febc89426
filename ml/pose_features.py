"""Features of people's movement in a window of poses: tracks, limbs, pairs, falls.

The live system scores windows (the CNN's 1.6 s), so everything here describes one window of
``W`` seconds of ``FramePoses`` sampled at ``fps``. People are linked into tracks across the
window's frames; per-track features describe how fast limbs move relative to the person's own
torso size (so near and far people, and 360p and 1080p cameras, compare), how sharply they
accelerate, and whether the torso drops or tilts (a fall); per-pair features describe whether
a wrist or ankle of one person reaches another's head or torso, how fast two people move
relative to each other and how much their boxes overlap. Window features are the maximum and
the mean of these over tracks and pairs, plus counts of people: a fixed-length vector named by
``FEATURE_NAMES``. All features are non-negative (distances are capped), so a model may
log-transform them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ml.pose import FramePoses

# COCO keypoint indices.
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 11, 12, 13, 14, 15, 16
HEAD = (NOSE, L_EYE, R_EYE, L_EAR, R_EAR)
WRISTS = (L_WRIST, R_WRIST)
ELBOWS = (L_ELBOW, R_ELBOW)
ANKLES = (L_ANKLE, R_ANKLE)
KNEES = (L_KNEE, R_KNEE)
EXTREMITIES = WRISTS + ANKLES

# Keypoints below this confidence are treated as unseen. MoveNet's keypoint scores on small
# people in surveillance footage sit around 0.2-0.5.
KEYPOINT_FLOOR = 0.2
PERSON_FLOOR = 0.15
# Distances are in torso lengths; "far" caps them so absent pairs have a finite value.
FAR = 8.0
REACH = 0.75  # a wrist or ankle within this many torso lengths of another's head or torso
MAX_SPEED = 40.0  # torso lengths per second; above it a "movement" is a tracking or pose jump


@dataclass(frozen=True)
class Track:
    """One person across a window: per-frame arrays, NaN where the person is not seen."""

    keypoints: np.ndarray  # (T, 17, 3) x, y, score; NaN x/y where unseen
    boxes: np.ndarray  # (T, 4)
    scores: np.ndarray  # (T,), 0 where unseen

    @property
    def present(self) -> np.ndarray:
        return np.asarray(self.scores > 0)


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) with every box in b (M, 4)."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.asarray(np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0))


def _keypoint_distance(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Mean distance of the keypoints both see, in units of ``scale`` (N, M)."""
    seen = (a[:, None, :, 2] >= KEYPOINT_FLOOR) & (b[None, :, :, 2] >= KEYPOINT_FLOOR)
    gaps = np.linalg.norm(a[:, None, :, :2] - b[None, :, :, :2], axis=-1)
    counts = seen.sum(-1)
    mean = np.where(counts > 0, (gaps * seen).sum(-1) / np.maximum(counts, 1), np.inf)
    return np.asarray(mean / scale)


@dataclass
class _GrowingTrack:
    keypoints: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    last: int = -1

    @classmethod
    def new(cls, frames: int) -> _GrowingTrack:
        return cls(
            np.full((frames, 17, 3), np.nan, np.float32),
            np.full((frames, 4), np.nan, np.float32),
            np.zeros(frames, np.float32),
        )


def link_tracks(
    poses: Sequence[FramePoses], person_floor: float = PERSON_FLOOR, max_gap: int = 2
) -> list[Track]:
    """Link people across frames by box IoU and keypoint distance (Hungarian assignment).

    A person is matched to a track that saw someone within the last ``max_gap`` frames, at
    the lowest total cost ``(1 - IoU) + keypoint distance / box height`` (capped at 2); a cost
    above 1.5 (no overlap and more than half a body away) starts a new track instead.
    """
    from scipy.optimize import linear_sum_assignment

    frames = len(poses)
    live: list[_GrowingTrack] = []
    finished: list[_GrowingTrack] = []
    for t, frame in enumerate(poses):
        keep = np.flatnonzero(frame.scores >= person_floor)
        keypoints, boxes, scores = frame.keypoints[keep], frame.boxes[keep], frame.scores[keep]
        finished.extend(track for track in live if t - track.last > max_gap)
        live = [track for track in live if t - track.last <= max_gap]
        assigned = np.full(len(keep), -1)
        if live and len(keep):
            last_kp = np.stack([track.keypoints[track.last] for track in live])
            last_box = np.stack([track.boxes[track.last] for track in live])
            height = np.maximum(last_box[:, 3] - last_box[:, 1], 1.0)
            cost = (1 - _box_iou(last_box, boxes)) + np.minimum(
                _keypoint_distance(last_kp, keypoints, height[:, None]), 2.0
            )
            rows, cols = linear_sum_assignment(cost)
            for row, col in zip(rows, cols, strict=True):
                if cost[row, col] <= 1.5:
                    assigned[col] = row
        for person in range(len(keep)):
            if assigned[person] >= 0:
                track = live[int(assigned[person])]
            else:
                track = _GrowingTrack.new(frames)
                live.append(track)
            track.keypoints[t] = keypoints[person]
            track.boxes[t] = boxes[person]
            track.scores[t] = scores[person]
            track.last = t
    finished.extend(live)
    return [Track(track.keypoints, track.boxes, track.scores) for track in finished]


@dataclass(frozen=True)
class _Body:
    """Derived per-frame points of one track, NaN where unseen; lengths in frame pixels."""

    points: np.ndarray  # (T, 17, 2), NaN where the keypoint is below the floor
    centre: np.ndarray  # (T, 2) torso centre
    head: np.ndarray  # (T, 2)
    torso: float  # the track's torso length (median over frames)
    tilt: np.ndarray  # (T,) angle of the hip->shoulder line from vertical, radians
    aspect: np.ndarray  # (T,) box height / width


def _nanmean_points(points: np.ndarray, indices: Sequence[int]) -> np.ndarray:
    chosen = points[:, list(indices)]
    seen = np.isfinite(chosen[..., 0])
    total = np.where(seen[..., None], chosen, 0).sum(1)
    count = seen.sum(1)[:, None]
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _body(track: Track) -> _Body:
    kp = track.keypoints
    seen = kp[..., 2] >= KEYPOINT_FLOOR
    points = np.where(seen[..., None], kp[..., :2], np.nan).astype(np.float64)
    shoulders = _nanmean_points(points, (L_SHOULDER, R_SHOULDER))
    hips = _nanmean_points(points, (L_HIP, R_HIP))
    box_centre = np.stack(
        [(track.boxes[:, 0] + track.boxes[:, 2]) / 2, (track.boxes[:, 1] + track.boxes[:, 3]) / 2],
        axis=1,
    ).astype(np.float64)
    torso_points = _nanmean_points(points, (L_SHOULDER, R_SHOULDER, L_HIP, R_HIP))
    centre = np.where(np.isfinite(torso_points), torso_points, box_centre)
    head = _nanmean_points(points, HEAD)
    spine = shoulders - hips
    spine_length = np.linalg.norm(spine, axis=1)
    box_height = (track.boxes[:, 3] - track.boxes[:, 1]).astype(np.float64)
    box_width = (track.boxes[:, 2] - track.boxes[:, 0]).astype(np.float64)
    # A person's torso is about a third of their box height; the box stands in when the
    # shoulders or hips are not both seen, and bounds a spine foreshortened by the view.
    lengths = np.where(
        np.isfinite(spine_length), np.maximum(spine_length, box_height / 4), box_height / 3
    )
    finite = lengths[np.isfinite(lengths)]
    torso = float(np.median(finite)) if finite.size else 1.0
    tilt = np.abs(np.arctan2(spine[:, 0], -spine[:, 1]))
    aspect = box_height / np.maximum(box_width, 1.0)
    return _Body(points, centre, head, max(torso, 4.0), tilt, aspect)


def _speeds(points: np.ndarray, fps: float, scale: float) -> np.ndarray:
    """Speed (T-1, ...) of points (T, ..., 2) in scale units per second; NaN if unseen."""
    speed = np.linalg.norm(np.diff(points, axis=0), axis=-1) * fps / scale
    return np.asarray(np.where(speed > MAX_SPEED, np.nan, speed))


def _max(values: np.ndarray, default: float = 0.0) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else default


def _min(values: np.ndarray, default: float) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.min()) if finite.size else default


def _mean(values: np.ndarray, default: float = 0.0) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else default


TRACK_FEATURES = (
    "wrist_speed_max",
    "wrist_speed_mean",
    "wrist_rel_speed_max",
    "wrist_accel_max",
    "elbow_speed_max",
    "ankle_speed_max",
    "ankle_rel_speed_max",
    "ankle_accel_max",
    "knee_speed_max",
    "head_speed_max",
    "head_accel_max",
    "centre_speed_max",
    "centre_speed_mean",
    "limb_speed_sd",
    "tilt_range",
    "tilt_max",
    "head_drop",
    "aspect_change",
    "arm_reach",
    "score_mean",
)


def _track_features(track: Track, body: _Body, fps: float) -> np.ndarray:
    torso = body.torso
    wrist = _speeds(body.points[:, list(WRISTS)], fps, torso)
    ankle = _speeds(body.points[:, list(ANKLES)], fps, torso)
    centre = _speeds(body.centre, fps, torso)
    relative = body.points[:, list(EXTREMITIES)] - body.centre[:, None]
    rel = _speeds(relative, fps, torso)
    head = _speeds(body.head, fps, torso)

    def accel(speed_vectors: np.ndarray) -> np.ndarray:
        velocity = np.diff(speed_vectors, axis=0) * fps / torso
        change = np.linalg.norm(np.diff(velocity, axis=0), axis=-1) * fps
        return np.asarray(np.where(change > MAX_SPEED * fps, np.nan, change))

    limbs = np.concatenate([wrist, ankle], axis=1) if wrist.size else wrist
    head_y = body.head[:, 1]
    # Largest downward move of the head between any earlier and later frame: a fall or a
    # person knocked down; in torso lengths.
    drops = head_y[None, :] - head_y[:, None]
    later = np.triu(np.ones_like(drops, dtype=bool), k=1)
    head_drop = _max(np.where(later, drops, np.nan)) / torso
    aspects = body.aspect[np.isfinite(body.aspect) & track.present]
    aspect_change = float(np.log(aspects.max() / max(aspects.min(), 1e-3))) if aspects.size else 0.0
    reach = np.linalg.norm(relative[:, :2], axis=-1) / torso  # wrists from the torso centre
    return np.array(
        [
            _max(wrist),
            _mean(wrist),
            _max(rel[:, :2]) if rel.size else 0.0,
            _max(accel(body.points[:, list(WRISTS)])),
            _max(_speeds(body.points[:, list(ELBOWS)], fps, torso)),
            _max(ankle),
            _max(rel[:, 2:]) if rel.size else 0.0,
            _max(accel(body.points[:, list(ANKLES)])),
            _max(_speeds(body.points[:, list(KNEES)], fps, torso)),
            _max(head),
            _max(accel(body.head[:, None])),
            _max(centre),
            _mean(centre),
            float(np.nanstd(limbs)) if np.isfinite(limbs).sum() > 1 else 0.0,
            float(np.nanmax(body.tilt) - np.nanmin(body.tilt))
            if np.isfinite(body.tilt).any()
            else 0.0,
            _max(body.tilt),
            max(head_drop, 0.0),
            aspect_change,
            min(_max(reach), FAR),
            float(track.scores[track.present].mean()) if track.present.any() else 0.0,
        ],
        dtype=np.float64,
    )


PAIR_FEATURES = (
    "reach_min",
    "reach_frac",
    "strike_speed",
    "centre_dist_min",
    "approach_speed",
    "rel_speed_max",
    "box_iou_max",
    "box_iou_mean",
    "both_moving",
    "copresent_frac",
)


def _pair_features(
    a: Track, body_a: _Body, b: Track, body_b: _Body, fps: float
) -> np.ndarray | None:
    both = a.present & b.present
    if both.sum() == 0:
        return None
    scale = (body_a.torso + body_b.torso) / 2

    def reach(src: _Body, dst: _Body) -> np.ndarray:
        # (T, 4 extremities, 2 targets): distance of a wrist/ankle to the other's head / torso.
        targets = np.stack([dst.head, dst.centre], axis=1)
        limbs = src.points[:, list(EXTREMITIES)]
        return np.asarray(np.linalg.norm(limbs[:, :, None] - targets[:, None], axis=-1) / scale)

    reach_ab, reach_ba = reach(body_a, body_b), reach(body_b, body_a)
    near = np.fmin(
        np.nanmin(np.where(np.isfinite(reach_ab), reach_ab, np.inf), axis=(1, 2)),
        np.nanmin(np.where(np.isfinite(reach_ba), reach_ba, np.inf), axis=(1, 2)),
    )
    near = np.where(np.isinf(near), np.nan, near)
    seen_near = near[both & np.isfinite(near)]
    reach_frac = float((seen_near < REACH).mean()) if seen_near.size else 0.0

    def strike(src: _Body, reach_src: np.ndarray) -> float:
        # Speed of a wrist/ankle (relative to its own body) in the frames it is near the other.
        relative = src.points[:, list(EXTREMITIES)] - src.centre[:, None]
        speed = _speeds(relative, fps, src.torso)  # (T-1, 4)
        close = np.nanmin(np.where(np.isfinite(reach_src), reach_src, np.inf), axis=2)[1:] < 1.0
        return _max(np.where(close, speed, np.nan))

    centre_gap = np.linalg.norm(body_a.centre - body_b.centre, axis=1) / scale
    approach = -np.diff(centre_gap) * fps
    rel_velocity = np.diff(body_a.centre - body_b.centre, axis=0) * fps / scale
    rel_speed = np.linalg.norm(rel_velocity, axis=1)
    rel_speed = np.where(rel_speed > MAX_SPEED, np.nan, rel_speed)
    iou = np.array(
        [
            _box_iou(a.boxes[t : t + 1], b.boxes[t : t + 1])[0, 0] if both[t] else np.nan
            for t in range(len(both))
        ]
    )
    limb_a = _speeds(
        body_a.points[:, list(EXTREMITIES)] - body_a.centre[:, None], fps, body_a.torso
    )
    limb_b = _speeds(
        body_b.points[:, list(EXTREMITIES)] - body_b.centre[:, None], fps, body_b.torso
    )
    moving = np.fmin(_nanmax_rows(limb_a), _nanmax_rows(limb_b))
    return np.array(
        [
            min(_min(near, FAR), FAR),
            reach_frac,
            max(strike(body_a, reach_ab), strike(body_b, reach_ba)),
            min(_min(np.where(both, centre_gap, np.nan), FAR), FAR),
            min(max(_max(np.abs(approach)), 0.0), MAX_SPEED),
            _max(rel_speed),
            _max(iou),
            _mean(iou),
            _max(moving),
            float(both.mean()),
        ],
        dtype=np.float64,
    )


def _nanmax_rows(values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    filled = np.where(finite, values, -np.inf).max(axis=1)
    return np.where(np.isinf(filled), np.nan, filled)


# Values a window gets when it has no track (or no pair) to describe: "nobody moving",
# "nobody near anybody".
_PAIR_ABSENT = np.array([FAR, 0, 0, FAR, 0, 0, 0, 0, 0, 0], dtype=np.float64)
_TRACK_ABSENT = np.zeros(len(TRACK_FEATURES), dtype=np.float64)

GLOBAL_FEATURES = (
    "people_mean",
    "people_max",
    "tracks",
    "multi_person_frac",
    "empty_frac",
    "motion_energy",
)

FEATURE_NAMES: tuple[str, ...] = (
    GLOBAL_FEATURES
    + tuple(f"track_{name}_top" for name in TRACK_FEATURES)
    + tuple(f"track_{name}_avg" for name in TRACK_FEATURES)
    + tuple(f"pair_{name}_top" for name in PAIR_FEATURES)
    + tuple(f"pair_{name}_avg" for name in PAIR_FEATURES)
)

# For the "top" aggregate, distances count when small; everything else when large.
_PAIR_SMALLER_IS_STRONGER = np.array(
    [name in ("reach_min", "centre_dist_min") for name in PAIR_FEATURES]
)


def window_features(
    poses: Sequence[FramePoses], fps: float, person_floor: float = PERSON_FLOOR
) -> np.ndarray:
    """The fixed-length feature vector (``len(FEATURE_NAMES)``,) of one window of poses."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    tracks = [t for t in link_tracks(poses, person_floor) if t.present.sum() >= 2]
    bodies = [_body(t) for t in tracks]
    counts = np.array([int((p.scores >= person_floor).sum()) for p in poses] or [0])
    track_rows = [_track_features(t, b, fps) for t, b in zip(tracks, bodies, strict=True)]
    pair_rows = []
    for i in range(len(tracks)):
        for j in range(i + 1, len(tracks)):
            row = _pair_features(tracks[i], bodies[i], tracks[j], bodies[j], fps)
            if row is not None:
                pair_rows.append(row)
    if track_rows:
        track_matrix = np.nan_to_num(np.stack(track_rows))
        track_top, track_avg = track_matrix.max(0), track_matrix.mean(0)
        energy = float(
            np.sum([r[TRACK_FEATURES.index("wrist_speed_mean")] for r in track_rows])
        ) / max(len(poses), 1)
    else:
        track_top = track_avg = _TRACK_ABSENT
        energy = 0.0
    if pair_rows:
        pair_matrix = np.nan_to_num(np.stack(pair_rows))
        pair_top = np.where(_PAIR_SMALLER_IS_STRONGER, pair_matrix.min(0), pair_matrix.max(0))
        pair_avg = pair_matrix.mean(0)
    else:
        pair_top = pair_avg = _PAIR_ABSENT
    global_row = np.array(
        [
            counts.mean(),
            counts.max(),
            len(tracks),
            float((counts >= 2).mean()),
            float((counts == 0).mean()),
            energy,
        ]
    )
    vector = np.concatenate([global_row, track_top, track_avg, pair_top, pair_avg])
    cleaned = np.clip(np.nan_to_num(vector, nan=0.0, posinf=FAR, neginf=0.0), 0.0, None)
    return np.asarray(cleaned, dtype=np.float32)


def window_starts(frames: int, fps: float, window_seconds: float, hop_seconds: float) -> list[int]:
    """First frame index of each window of a clip; a clip shorter than a window is one window."""
    length = max(2, round(window_seconds * fps))
    hop = max(1, round(hop_seconds * fps))
    if frames <= length:
        return [0]
    starts = list(range(0, frames - length + 1, hop))
    if starts[-1] + length < frames:
        starts.append(frames - length)  # the clip's end is covered too
    return starts


def clip_window_features(
    poses: Sequence[FramePoses],
    fps: float,
    window_seconds: float = 1.6,
    hop_seconds: float = 0.4,
) -> np.ndarray:
    """Features (n_windows, F) of the windows of a clip's poses sampled at ``fps``."""
    length = max(2, round(window_seconds * fps))
    return np.stack(
        [
            window_features(poses[start : start + length], fps)
            for start in window_starts(len(poses), fps, window_seconds, hop_seconds)
        ]
    )


# Two views of the same frames: the whole frame at 256 px, and the whole frame merged with its
# tiles (more, smaller people found). Their features side by side scored better on grouped CV
# than either alone (ml/README.md), at no extra model cost: tiling runs the whole frame anyway.
VIEW_FEATURE_NAMES: tuple[str, ...] = tuple(f"whole_{n}" for n in FEATURE_NAMES) + tuple(
    f"tiled_{n}" for n in FEATURE_NAMES
)


def window_view_features(
    whole: Sequence[FramePoses], tiled: Sequence[FramePoses], fps: float
) -> np.ndarray:
    """``window_features`` of both views of one window, side by side (``VIEW_FEATURE_NAMES``)."""
    if len(whole) != len(tiled):
        raise ValueError(f"views of different lengths: {len(whole)} and {len(tiled)} frames")
    return np.concatenate([window_features(whole, fps), window_features(tiled, fps)])


def clip_view_window_features(
    whole: Sequence[FramePoses],
    tiled: Sequence[FramePoses],
    fps: float,
    window_seconds: float = 1.6,
    hop_seconds: float = 0.4,
) -> np.ndarray:
    """``clip_window_features`` of both views, side by side: (n_windows, 2F)."""
    return np.concatenate(
        [
            clip_window_features(whole, fps, window_seconds, hop_seconds),
            clip_window_features(tiled, fps, window_seconds, hop_seconds),
        ],
        axis=1,
    )
