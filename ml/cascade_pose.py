"""Stage 2 of the cascade at run time: pose keypoints of a window -> features -> pose classifier.

The pose model (``ml.pose``), the features (``ml.pose_features``) and the classifier
(``ml.pose_stage``) are the pose stage's own modules; this file only strings them together for
windows of frames, the same way training strings them together for clips, so both see the
same numbers. Stage 2 reads its own frames: full-size RGB decoded at the card's stage-2 fps
(``CascadeDetector.stage2_fps``), not stage 1's analysis frames.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ml.model_card import StageCard
from ml.pose import FramePoses, PoseEstimator
from ml.pose_features import VIEW_FEATURE_NAMES, clip_view_window_features
from ml.pose_stage import POSE_FPS, POSE_TILES, TRAIN_HOP_SECONDS, WINDOW_SECONDS, PoseStage
from ml.video import iter_frames

logger = logging.getLogger(__name__)

__all__ = ["PoseWindowScorer", "resample_indices"]


def resample_indices(frames: int, source_fps: float, target_fps: float) -> list[int]:
    """Indices of the frames (of ``frames`` at ``source_fps``) nearest at or before each tick of
    ``target_fps``: a fallback for callers that hand stage 1's frames to stage 2. It is not what
    decoding at ``target_fps`` gives (``ml.frames`` times frames by their timestamps), so live
    callers should pass frames decoded at the stage's fps (``pose_clips``)."""
    if frames <= 0:
        return []
    ratio = source_fps / target_fps
    count = int(np.floor((frames - 1) / ratio + 1e-9)) + 1
    return [min(frames - 1, int(np.floor(k * ratio + 1e-9))) for k in range(count)]


class PoseWindowScorer:
    """Scores clips of full-size frames decoded at ``pose_fps`` with the pose stage's chosen
    design (``ml.pose_stage``): each frame run whole and as ``tiles`` overlapping tiles
    (``PoseEstimator.estimate_views``), window features of both views side by side
    (``clip_view_window_features``: windows of ``window_seconds`` every ``hop_seconds``), the
    clip's score the mean of its window scores, exactly as training scored a clip. Thread-safe
    (the estimator keeps one interpreter per thread; the classifier is read-only)."""

    def __init__(
        self,
        estimator: PoseEstimator,
        classifier: PoseStage,
        *,
        pose_fps: float,
        window_seconds: float,
        hop_seconds: float,
    ) -> None:
        self.estimator = estimator
        self.classifier = classifier
        self.fps = pose_fps
        self.window_seconds = window_seconds
        self.hop_seconds = hop_seconds

    @classmethod
    def load(
        cls,
        stage_file: Path,
        pose_model: Path,
        *,
        stage: StageCard,
        threads: int = 1,
    ) -> PoseWindowScorer:
        try:
            classifier = PoseStage.from_dict(json.loads(stage_file.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{stage_file}: unreadable pose stage ({error})") from error
        if classifier.feature_names != VIEW_FEATURE_NAMES:
            raise ValueError(
                f"{stage_file}: this runtime serves the two-view pose stage "
                f"({len(VIEW_FEATURE_NAMES)} features), not {len(classifier.feature_names)}"
            )
        return cls(
            PoseEstimator.load(
                pose_model, threads=threads, tiles=int(stage.details.get("tiles", POSE_TILES))
            ),
            classifier,
            pose_fps=float(stage.details.get("fps", POSE_FPS)),
            window_seconds=float(stage.details.get("window_seconds", WINDOW_SECONDS)),
            hop_seconds=float(stage.details.get("hop_seconds", TRAIN_HOP_SECONDS)),
        )

    def _clip_score(self, whole: Sequence[FramePoses], tiled: Sequence[FramePoses]) -> float:
        features = clip_view_window_features(
            whole, tiled, self.fps, self.window_seconds, self.hop_seconds
        )
        return self.classifier.score_clip(np.asarray(features, dtype=np.float64))

    def features(self, frames: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Window features (n_windows, 132) of full-size frames at ``fps``."""
        whole, tiled = self.estimator.estimate_views(list(frames))
        return np.asarray(
            clip_view_window_features(
                whole, tiled, self.fps, self.window_seconds, self.hop_seconds
            ),
            dtype=np.float64,
        )

    def score_file(self, path: str | os.PathLike[str]) -> float:
        """Stage-2 score of a whole video file, frames streamed at ``fps`` (one full-size frame
        in memory at a time): what ``score`` gives for ``decode_frames(path, fps=self.fps)``."""
        whole: list[FramePoses] = []
        tiled: list[FramePoses] = []
        for frame in iter_frames(path, fps=self.fps):
            found_whole, found_tiled = self.estimator.estimate_views([frame])
            whole.extend(found_whole)
            tiled.extend(found_tiled)
        return self._clip_score(whole, tiled)

    def score(self, clips: Sequence[Sequence[np.ndarray] | np.ndarray]) -> np.ndarray:
        """Stage-2 scores (N,) of clips of full-size RGB frames at ``fps``; NaN for a clip whose
        frames are not images or that holds none (the cascade then falls back to stage 1 for
        it), so one corrupt clip never fails a batch."""
        scores = np.full(len(clips), np.nan, dtype=np.float64)
        for index, frames in enumerate(clips):
            try:
                if len(frames) == 0:
                    raise ValueError("no frames")
                scores[index] = float(self.classifier.score_clip(self.features(frames)))
            except ValueError as error:
                logger.warning("pose stage: clip %d not scored: %s", index, error)
        return scores
