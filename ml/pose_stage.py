"""Stage 2 of the detector: a score in [0, 1] for a window of poses, and its grouped CV.

``PoseStage`` is log1p + standardisation + L2 logistic regression on the window features of
``ml.pose_features``: 66 numbers for about 200 training clips, where a linear model with a
strong prior is what the data can support (see the comparison in ml/README.md). It is stored
as plain JSON (``to_dict``/``from_dict``), never pickled, and predicts with numpy alone.

``python -m ml.pose_stage cv --data DIR`` reproduces the comparison on the shipped model
card's grouped folds: pose alone, and stacked with the CNN's out-of-fold clip scores by a
logistic regression fitted with nested CV.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ml.pose_features import FEATURE_NAMES, VIEW_FEATURE_NAMES

SCHEMA = "abusewatch.pose_stage/1"

# The design chosen on grouped CV (ml/README.md, "Pose stage"): poses at 7.5 fps over the
# CNN's 1.6 s window (12 frames); the whole frame plus two overlapping halves per frame
# (small people); training windows every 0.4 s.
POSE_FPS = 7.5
POSE_TILES = 2
POSE_VIEWS = "both"  # features of the whole-frame and the tiled poses side by side
WINDOW_SECONDS = 1.6
TRAIN_HOP_SECONDS = 0.4


def _logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(p, dtype=np.float64), 1e-4, 1 - 1e-4)
    return np.asarray(np.log(clipped / (1 - clipped)))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -50, 50))))


@dataclass
class PoseStage:
    """log1p -> standardise -> logistic regression, over ``VIEW_FEATURE_NAMES`` (the chosen
    design: whole-frame and tiled views side by side) or ``FEATURE_NAMES`` (one view).

    ``C`` is the inverse L2 strength (sklearn's); 0.3 was chosen on grouped CV (0.03-3 tried).
    """

    C: float = 0.3
    feature_names: tuple[str, ...] = VIEW_FEATURE_NAMES
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    coef: np.ndarray = field(default_factory=lambda: np.zeros(0))
    intercept: float = 0.0

    def _transform(self, features: np.ndarray) -> np.ndarray:
        matrix = np.asarray(features, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.feature_names):
            raise ValueError(
                f"pose features must be (n, {len(self.feature_names)}), got {matrix.shape}"
            )
        return np.asarray(np.log1p(np.clip(np.nan_to_num(matrix), 0.0, None)))

    def fit(
        self,
        features: np.ndarray,
        labels: np.ndarray,
        seed: int = 0,
        sample_weight: np.ndarray | None = None,
    ) -> PoseStage:
        """Fit on window features and their clip's labels; weights let each clip count once."""
        from sklearn.linear_model import LogisticRegression

        logged = self._transform(features)
        self.mean = logged.mean(axis=0)
        self.scale = np.where(logged.std(axis=0) > 1e-9, logged.std(axis=0), 1.0)
        model = LogisticRegression(C=self.C, max_iter=2000, random_state=seed)
        model.fit(
            (logged - self.mean) / self.scale, np.asarray(labels), sample_weight=sample_weight
        )
        self.coef = model.coef_[0].astype(np.float64)
        self.intercept = float(model.intercept_[0])
        return self

    def fit_clips(
        self, windows: Sequence[np.ndarray], labels: Sequence[int] | np.ndarray, seed: int = 0
    ) -> PoseStage:
        """Fit on clips given as window features (one (n_i, F) array per clip) and clip labels.

        Every window carries its clip's label, weighted 1 / n_i so each clip counts once
        whatever its length.
        """
        if len(windows) != len(labels) or not len(windows):
            raise ValueError(f"{len(windows)} clips of windows for {len(labels)} labels")
        features = np.concatenate([np.asarray(w) for w in windows])
        window_labels = np.concatenate(
            [np.full(len(w), int(label)) for w, label in zip(windows, labels, strict=True)]
        )
        weights = np.concatenate([np.full(len(w), 1.0 / len(w)) for w in windows])
        return self.fit(features, window_labels, seed, sample_weight=weights)

    def score_clip(self, windows: np.ndarray) -> float:
        """A clip's score: the mean of its windows' scores (as the CNN's clip score)."""
        return float(self.predict(windows).mean())

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Scores in [0, 1] for window features (n, F)."""
        if self.coef.size == 0:
            raise RuntimeError("PoseStage is not fitted")
        standard = (self._transform(features) - self.mean) / self.scale
        return _sigmoid(standard @ self.coef + self.intercept)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "kind": "log1p-standardise-logistic",
            "C": self.C,
            "feature_names": list(self.feature_names),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PoseStage:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a pose stage: schema {data.get('schema')!r}")
        names = tuple(str(n) for n in data["feature_names"])
        if names not in (FEATURE_NAMES, VIEW_FEATURE_NAMES):
            raise ValueError("pose stage was fitted on other features than ml.pose_features has")
        stage = cls(
            C=float(data["C"]),
            feature_names=names,
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            coef=np.asarray(data["coef"], dtype=np.float64),
            intercept=float(data["intercept"]),
        )
        if not stage.mean.shape == stage.scale.shape == stage.coef.shape == (len(names),):
            raise ValueError("pose stage arrays do not match its feature names")
        return stage


@dataclass
class LogisticStack:
    """Learned fusion: a logistic regression on the logits of the stage scores.

    No intercept by default: each stage's score is already a probability, so the fusion only
    has to weigh their logits. On the card's folds a fitted intercept mostly learnt the class
    balance of the training folds (it swung from -0.43 to -0.01 between folds), which shifted
    each fold's scores differently and cost 0.015 of pooled out-of-fold AUC (0.819 -> 0.835
    without it) for the same fold AUC.
    """

    coef: np.ndarray = field(default_factory=lambda: np.zeros(0))
    intercept: float = 0.0
    fit_intercept: bool = False

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> LogisticStack:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=1.0, max_iter=1000, fit_intercept=self.fit_intercept)
        model.fit(_logit(scores), labels)
        self.coef = model.coef_[0].astype(np.float64)
        self.intercept = float(np.ravel(model.intercept_)[0]) if self.fit_intercept else 0.0
        return self

    def predict(self, scores: np.ndarray) -> np.ndarray:
        return _sigmoid(_logit(scores) @ self.coef + self.intercept)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "logistic-on-logits",
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "fit_intercept": self.fit_intercept,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogisticStack:
        return cls(
            np.asarray(data["coef"], dtype=np.float64),
            float(data["intercept"]),
            bool(data.get("fit_intercept", False)),
        )


# ---- grouped cross-validation on the shipped card's folds ------------------------------------


def card_folds(labels: np.ndarray, groups: np.ndarray, card: dict[str, Any]) -> list[np.ndarray]:
    """Test indices of each fold, rebuilt as ml.train builds them, checked against the card.

    ml.train splits with StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed) over
    the clips in dataset order; the card stores each fold's test groups, which must match.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    folds_in_card = card["cross_validation"]["folds"]
    seed = int(card.get("training", {}).get("config", {}).get("seed", 0))
    splitter = StratifiedGroupKFold(n_splits=len(folds_in_card), shuffle=True, random_state=seed)
    folds = [test for _, test in splitter.split(np.zeros(len(labels)), labels, groups)]
    for fold, entry in zip(folds, folds_in_card, strict=True):
        rebuilt = sorted({str(g) for g in groups[fold]})
        if rebuilt != sorted(entry["test_groups"]) or len(fold) != entry["n_test"]:
            raise ValueError(f"fold {entry['fold']}: groups {rebuilt} are not the card's")
    return folds


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def _fit_predict_clips(
    windows: Sequence[np.ndarray],
    labels: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    C: float,
    seed: int,
) -> np.ndarray:
    """Fit on the windows of the training clips; clip score = mean of its window scores."""
    width = windows[0].shape[1]
    names = VIEW_FEATURE_NAMES if width == len(VIEW_FEATURE_NAMES) else FEATURE_NAMES
    stage = PoseStage(C=C, feature_names=names).fit_clips(
        [windows[i] for i in train], labels[train], seed
    )
    return np.array([stage.score_clip(windows[i]) for i in test])


def grouped_cv(
    windows: Sequence[np.ndarray],
    labels: np.ndarray,
    folds: Sequence[np.ndarray],
    cnn_oof: np.ndarray | None,
    C: float = 0.3,
    seed: int = 0,
    stack_intercept: bool = False,
) -> dict[str, Any]:
    """Pose-alone and stacked out-of-fold scores on the given folds.

    Stacking is nested: in each outer fold, the pose stage's scores for the training clips come
    from an inner CV over the other folds, so the fusion weights never see scores of a model
    trained on those same clips; the test fold is scored by the pose stage fitted on all the
    training clips and fused with those weights.
    """
    n = len(labels)
    pose_oof = np.full(n, np.nan)
    fused_oof = np.full(n, np.nan)
    for k, test in enumerate(folds):
        train = np.concatenate([f for j, f in enumerate(folds) if j != k])
        pose_oof[test] = _fit_predict_clips(windows, labels, train, test, C, seed)
        if cnn_oof is None:
            continue
        inner = np.full(n, np.nan)
        for j, inner_test in enumerate(folds):
            if j == k:
                continue
            inner_train = np.concatenate([f for i, f in enumerate(folds) if i not in (j, k)])
            inner[inner_test] = _fit_predict_clips(
                windows, labels, inner_train, inner_test, C, seed
            )
        stack = LogisticStack(fit_intercept=stack_intercept).fit(
            np.stack([cnn_oof[train], inner[train]], 1), labels[train]
        )
        fused_oof[test] = stack.predict(np.stack([cnn_oof[test], pose_oof[test]], 1))

    def summary(scores: np.ndarray) -> dict[str, Any]:
        fold_aucs = [_auc(labels[f], scores[f]) for f in folds]
        return {
            "fold_auc": [round(a, 4) for a in fold_aucs],
            "fold_auc_mean": round(float(np.mean(fold_aucs)), 4),
            "fold_auc_sd": round(float(np.std(fold_aucs, ddof=1)), 4),
            "pooled_auc": round(_auc(labels, scores), 4),
        }

    result: dict[str, Any] = {"pose": summary(pose_oof), "pose_oof": pose_oof.tolist()}
    if cnn_oof is not None:
        result["cnn"] = summary(cnn_oof)
        result["stacked"] = summary(fused_oof)
        result["stacked_oof"] = fused_oof.tolist()
    return result


def group_bootstrap_gain(
    labels: np.ndarray,
    groups: np.ndarray,
    base: Sequence[float] | np.ndarray,
    new: Sequence[float] | np.ndarray,
    draws: int = 2000,
    seed: int = 0,
) -> list[float]:
    """5th, 50th and 95th percentile of the pooled AUC gain over source groups resampled."""
    rng = np.random.default_rng(seed)
    base_scores, new_scores = np.asarray(base), np.asarray(new)
    members = {g: np.flatnonzero(groups == g) for g in np.unique(groups)}
    names = list(members)
    gains = []
    for _ in range(draws):
        picked = np.concatenate(
            [members[names[i]] for i in rng.integers(0, len(names), len(names))]
        )
        if len(set(labels[picked].tolist())) < 2:
            continue
        gains.append(
            _auc(labels[picked], new_scores[picked]) - _auc(labels[picked], base_scores[picked])
        )
    return [round(float(q), 4) for q in np.percentile(gains, [5, 50, 95])]


def window_vector(
    estimator: Any, frames: Sequence[np.ndarray], fps: float = POSE_FPS, views: str = POSE_VIEWS
) -> np.ndarray:
    """Stage-2 features (F,) of one window's frames (RGB, sampled at ``fps``): what the live
    path hands ``PoseStage.predict`` (as a (1, F) row). ``estimator`` is an
    ``ml.pose.PoseEstimator`` loaded with ``tiles=POSE_TILES``."""
    from ml.pose_features import window_features, window_view_features

    whole, tiled = estimator.estimate_views(frames)
    if views == "both":
        return window_view_features(whole, tiled, fps)
    return window_features(whole if views == "whole" else tiled, fps)


def dataset_windows(
    data: Path,
    fps: float = POSE_FPS,
    window_seconds: float = WINDOW_SECONDS,
    hop_seconds: float = TRAIN_HOP_SECONDS,
    source_fps: float | None = None,
    tiles: int = POSE_TILES,
    views: str = POSE_VIEWS,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, list[str]]:
    """Window features, labels, groups and names of a dataset's clips, poses from the cache.

    Poses come from ``clip_pose_views`` at ``source_fps`` (default ``fps``), every n-th frame
    kept when ``source_fps`` is a multiple of ``fps``; clips not in the cache are run through
    the pose model first (about 0.17 s per frame here with tiles=2). ``views``: "whole",
    "tiled" or "both" (side by side).
    """
    from ml.datasets import scan_dataset
    from ml.pose import PoseEstimator, clip_pose_views
    from ml.pose_features import clip_view_window_features, clip_window_features

    if views not in ("whole", "tiled", "both"):
        raise ValueError(f"views must be whole, tiled or both, got {views!r}")
    source_fps = source_fps or fps
    step = source_fps / fps
    if abs(step - round(step)) > 1e-6:
        raise ValueError(f"fps {fps} does not divide the cached rate {source_fps}")
    estimator = PoseEstimator.load(tiles=tiles)
    records = scan_dataset(data).records
    windows = []
    for record in records:
        whole, tiled = clip_pose_views(record.path, source_fps, estimator)
        whole, tiled = whole[:: round(step)], tiled[:: round(step)]
        if views == "both":
            windows.append(
                clip_view_window_features(whole, tiled, fps, window_seconds, hop_seconds)
            )
        else:
            poses = whole if views == "whole" else tiled
            windows.append(clip_window_features(poses, fps, window_seconds, hop_seconds))
    labels = np.array([r.label for r in records])
    groups = np.array([r.group for r in records])
    return windows, labels, groups, [str(r.path.relative_to(data)) for r in records]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.pose_stage", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    cv = commands.add_parser("cv", help="grouped CV of the pose stage on the card's folds")
    cv.add_argument("--data", type=Path, required=True)
    cv.add_argument(
        "--card", type=Path, default=Path(__file__).parent / "artifacts/default/model_card.json"
    )
    cv.add_argument("--fps", type=float, default=POSE_FPS)
    cv.add_argument("--source-fps", type=float, help="rate of the keypoint cache (default --fps)")
    cv.add_argument("--window", type=float, default=WINDOW_SECONDS, help="window seconds")
    cv.add_argument("--hop", type=float, default=TRAIN_HOP_SECONDS, help="seconds between starts")
    cv.add_argument("--C", type=float, nargs="+", default=[0.3])
    cv.add_argument("--tiles", type=int, default=POSE_TILES, choices=(1, 2, 4))
    cv.add_argument("--views", default=POSE_VIEWS, choices=("whole", "tiled", "both"))
    cv.add_argument("--stack-intercept", action="store_true", help="fit the fusion's intercept")
    cv.add_argument("--oof-out", type=Path, help="write clips and out-of-fold scores (JSON)")
    fit = commands.add_parser("fit", help="fit the pose stage on a dataset, write it as JSON")
    fit.add_argument("--data", type=Path, required=True, action="append")
    fit.add_argument("--out", type=Path, required=True)
    fit.add_argument("--C", type=float, default=PoseStage.C)
    fit.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "fit":
        windows: list[np.ndarray] = []
        all_labels: list[int] = []
        for folder in args.data:
            found, found_labels, _, _ = dataset_windows(folder)
            windows.extend(found)
            all_labels.extend(int(v) for v in found_labels)
        stage = PoseStage(C=args.C).fit_clips(windows, np.array(all_labels), args.seed)
        design = {"fps": POSE_FPS, "tiles": POSE_TILES, "views": POSE_VIEWS}
        record = {**stage.to_dict(), "design": {**design, "window_seconds": WINDOW_SECONDS}}
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(json.dumps({"clips": len(windows), "out": str(args.out)}))  # noqa: T201
        return 0
    card = json.loads(args.card.read_text())
    windows, labels, groups, clips = dataset_windows(
        args.data,
        args.fps,
        args.window,
        args.hop,
        args.source_fps or args.fps,
        tiles=args.tiles,
        views=args.views,
    )
    oof = card["cross_validation"]["out_of_fold"]
    if list(oof["labels"]) != labels.tolist():
        print("the card's out-of-fold labels are not this dataset's order", file=sys.stderr)  # noqa: T201
        return 2
    folds = card_folds(labels, groups, card)
    for c in args.C:
        result = grouped_cv(
            windows,
            labels,
            folds,
            np.asarray(oof["scores"]),
            C=c,
            stack_intercept=args.stack_intercept,
        )
        row = {k: result[k] for k in ("pose", "cnn", "stacked")}
        setting = {
            "fps": args.fps,
            "window": args.window,
            "hop": args.hop,
            "tiles": args.tiles,
            "views": args.views,
        }
        print(json.dumps({**setting, "C": c, **row}))  # noqa: T201 - the command's result
        if args.oof_out:
            bootstrap = group_bootstrap_gain(labels, groups, oof["scores"], result["stacked_oof"])
            args.oof_out.write_text(
                json.dumps(
                    {
                        **setting,
                        "C": c,
                        "clips": clips,
                        "labels": labels.tolist(),
                        "groups": groups.tolist(),
                        "cnn_oof": oof["scores"],
                        "pose_oof": result["pose_oof"],
                        "stacked_oof": result["stacked_oof"],
                        "stacked_minus_cnn_pooled_auc_90ci": bootstrap,
                    }
                )
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
