"""A window's motion score: the mean absolute change of its grey frames, 0 (still) to 1."""

from __future__ import annotations

import numpy as np

from cameras.ingest.media import motion_score


def grey_mean_difference(frames: list[np.ndarray]) -> float:
    """The definition, written the slow way."""
    grey = np.stack([frame.astype(np.float64).mean(axis=2) for frame in frames])
    return float(np.abs(np.diff(grey, axis=0)).mean() / 255.0)


def test_the_score_is_the_mean_change_of_the_grey_frames() -> None:
    rng = np.random.default_rng(7)
    for shape in [(20, 64, 64, 3), (2, 5, 7, 3), (3, 1, 1, 3)]:
        frames = list(rng.integers(0, 256, shape, dtype=np.uint8))
        assert abs(motion_score(frames) - grey_mean_difference(frames)) < 1e-12


def test_still_black_to_white_and_too_few_frames() -> None:
    black = np.zeros((8, 8, 3), np.uint8)
    white = np.full((8, 8, 3), 255, np.uint8)
    assert motion_score([black, black, black]) == 0.0
    # The extremes: every pixel from black to white and back, the largest change there is.
    assert motion_score([black, white, black]) == 1.0
    assert motion_score([white]) == 0.0
    assert motion_score([]) == 0.0
