"""Stage 2 of the cascade at run time: pose keypoints of a window -> features -> pose classifier.

The pose model (``ml.pose``), the features (``ml.pose_features``) and the classifier
(``ml.pose_stage``) are the pose stage's own modules; this file only strings them together for
windows of frames, the same way training strings them together for clips, so both see the
same numbers.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ml.model_card import StageCard
from ml.pose import PoseEstimator
from ml.pose_features import clip_window_features
from ml.pose_stage import PoseStage
from ml.video import iter_frames

logger = logging.getLogger(__name__)

__all__ = ["PoseWindowScorer", "pose_step"]


def pose_step(analysis_fps: float, pose_fps: float) -> int:
    """Every how many analysis frames pose reads one. Sampling at ``fps / step`` with
    ``ml.frames`` gives exactly every ``step``-th frame sampled at ``fps``, so training (clips
    decoded at the pose rate) and live (windows at the analysis rate) see the same frames."""
    step = round(analysis_fps / pose_fps)
    if step < 1 or abs(analysis_fps / step - pose_fps) > 1e-6:
        raise ValueError(
            f"the pose rate {pose_fps:g} fps must divide the analysis rate {analysis_fps:g} fps"
        )
    return step


class PoseWindowScorer:
    """Scores windows of frames with the pose stage. Thread-safe (the estimator keeps one
    interpreter per thread; the classifier is read-only)."""

    def __init__(
        self,
        estimator: PoseEstimator,
        classifier: PoseStage,
        *,
        pose_fps: float,
        step: int,
        window_seconds: float,
        hop_seconds: float,
    ) -> None:
        self.estimator = estimator
        self.classifier = classifier
        self.pose_fps = pose_fps
        self.step = step
        self.window_seconds = window_seconds
        self.hop_seconds = hop_seconds

    @classmethod
    def load(
        cls,
        stage_file: Path,
        pose_model: Path,
        *,
        analysis_fps: float,
        stage: StageCard,
        threads: int = 1,
    ) -> PoseWindowScorer:
        try:
            classifier = PoseStage.from_dict(json.loads(stage_file.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{stage_file}: unreadable pose stage ({error})") from error
        pose_fps = float(stage.details.get("fps", analysis_fps))
        return cls(
            PoseEstimator.load(pose_model, threads=threads),
            classifier,
            pose_fps=pose_fps,
            step=pose_step(analysis_fps, pose_fps),
            window_seconds=float(stage.details.get("window_seconds", 1.6)),
            hop_seconds=float(stage.details.get("hop_seconds", 0.8)),
        )

    def features(self, frames: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Pose window features (n, F) of frames at the analysis rate: one row for a window,
        one per pose window for a longer clip (as training computes them)."""
        poses = self.estimator.estimate(list(frames)[:: self.step])
        return np.asarray(
            clip_window_features(poses, self.pose_fps, self.window_seconds, self.hop_seconds),
            dtype=np.float64,
        )

    def score_file(self, path: str | os.PathLike[str]) -> float:
        """Stage-2 score of a whole video file, frames streamed at the pose rate (one full-size
        frame in memory at a time): what ``score`` gives for the file's frames at the analysis
        rate, since ``ml.frames`` at ``fps / step`` keeps every ``step``-th of them."""
        poses = [
            self.estimator.estimate([frame])[0] for frame in iter_frames(path, fps=self.pose_fps)
        ]
        features = clip_window_features(poses, self.pose_fps, self.window_seconds, self.hop_seconds)
        return float(np.mean(self.classifier.predict(np.asarray(features, dtype=np.float64))))

    def score(self, windows: Sequence[Sequence[np.ndarray] | np.ndarray]) -> np.ndarray:
        """Stage-2 scores (N,); NaN for a window whose frames are not images (the cascade then
        falls back to stage 1 for it), so one corrupt window never fails a batch."""
        scores = np.full(len(windows), np.nan, dtype=np.float64)
        for index, frames in enumerate(windows):
            try:
                # A window's score is the mean over its pose windows (one for a live window).
                scores[index] = float(np.mean(self.classifier.predict(self.features(frames))))
            except ValueError as error:
                logger.warning("pose stage: window %d not scored: %s", index, error)
        return scores
