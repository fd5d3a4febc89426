"""Fitting the cascade's gate, fusion and bands on out-of-fold clip scores (training only).

Inputs are out-of-fold (OOF) clip scores of grouped cross-validation: ``stage1`` from the CNN,
``stage2`` from the pose stage, each produced by models that never saw the clip's source group.

- Gate: the highest stage-1 cut that still passes ``gate_recall`` of the violent clips, so
  stage 2 runs on as few windows as possible while it can still rescue almost every fight.
- Fusion (default, ``fit_intercept=False``): one logistic regression WITHOUT intercept on
  [logit stage 1, passed * logit stage 2] over all clips (the pose stage's ``LogisticStack``
  design, with the gate): ``z = w1 logit(s1) + passed * w2 logit(s2)``. A window the gate stops
  is scored ``sigmoid(w1 logit(s1))`` by the same fit (its ``gated_out`` form: the passed form
  with stage 2 at 0.5, i.e. no evidence), one that passes adds ``w2 logit(s2)``. One fit puts
  both on one scale, so one set of bands applies whichever path a window took. Without an
  intercept the fusion cannot learn the training folds' share of fights (ml/README.md).
  ``fit_intercept=True`` is the earlier design (intercept, pass indicator, balanced classes).
- Honest figures: ``cross_fit`` refits gate and fusion on the other folds' OOF scores for each
  fold and scores that fold with them, so the fused OOF scores the bands are chosen on come from
  a fusion that never saw the clip either. With ``inner_stage2`` the stage-2 scores the fusion
  is fitted on are nested (from pose stages that never saw the held-out fold either). The
  shipped fusion is then fitted on all OOF scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.model_card import Fusion, Gate, LogisticModel, logit

__all__ = ["CascadeFit", "choose_gate", "cross_fit", "fit_cascade", "fit_logistic"]

DEFAULT_GATE_RECALL = 0.98
# L2 strength of the stacking regressions: two or three inputs and 100-200 clips need little,
# but the gated-out regression sees few fights and must not chase them.
DEFAULT_C = 1.0


def choose_gate(
    labels: np.ndarray, stage1: np.ndarray, recall: float = DEFAULT_GATE_RECALL
) -> float:
    """The highest cut on stage-1 scores that keeps ``recall`` of violent clips at or above it.

    A midpoint below the next violent score, so it is not glued to one clip's score.
    """
    labels = np.asarray(labels, dtype=np.int64)
    stage1 = np.asarray(stage1, dtype=np.float64)
    violent = np.sort(stage1[labels == 1])
    if not len(violent):
        return 0.0
    allowed_misses = int(np.floor((1.0 - recall) * len(violent) + 1e-9))
    kept_lowest = violent[allowed_misses]
    below = stage1[stage1 < kept_lowest]
    cut = (kept_lowest + below.max()) / 2.0 if len(below) else kept_lowest
    return float(np.clip(cut, 0.0, 1.0))


def fit_logistic(
    inputs: Sequence[str], features: np.ndarray, labels: np.ndarray, c: float = DEFAULT_C
) -> LogisticModel:
    """Logistic regression on the logits of the given score columns (N, len(inputs)),
    classes weighted to balance (see ``fit_cascade``)."""
    x = np.vectorize(logit)(np.asarray(features, dtype=np.float64)).reshape(len(labels), -1)
    coef, intercept = _balanced_logistic(x, np.asarray(labels, dtype=np.int64), c)
    return LogisticModel(tuple(inputs), tuple(float(v) for v in coef), intercept)


def _balanced_logistic(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y)) < 2:
        # One class only: a constant at its smoothed rate.
        rate = (y.sum() + 0.5) / (len(y) + 1.0)
        return np.zeros(x.shape[1]), float(logit(rate))
    # Balanced classes: each fold's fusion is fitted on the other folds, whose share of fights
    # moves with the held-out fold's; an intercept that followed it would shift whole folds
    # against each other (measured on the shipped CNN: pooled AUC 0.77 against 0.81).
    model = LogisticRegression(C=c, max_iter=1000, class_weight="balanced")
    model.fit(x, y)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


@dataclass(frozen=True)
class CascadeFit:
    gate: Gate
    fusion: Fusion

    def fused(self, stage1: np.ndarray, stage2: np.ndarray) -> np.ndarray:
        """Fused scores; ``stage2`` is read only where the gate passes (NaN elsewhere is fine)."""
        return np.array(
            [
                self.fusion.score(float(s1), float(s2) if self.gate.passes(s1) else None)
                for s1, s2 in zip(stage1, stage2, strict=True)
            ]
        )


def fit_cascade(
    labels: np.ndarray,
    stage1: np.ndarray,
    stage2: np.ndarray,
    *,
    gate_recall: float = DEFAULT_GATE_RECALL,
    c: float = DEFAULT_C,
    stage_names: tuple[str, str] = ("cnn", "pose"),
    fit_intercept: bool = False,
) -> CascadeFit:
    """Gate and fusion fitted on OOF clip scores (``stage2`` needed where the gate passes).

    The fusion is ONE logistic regression over every clip,
    ``z = b + w1 logit(s1) + passed * (w2 logit(s2) + b2)``: a clip the gate stops has no
    stage-2 score, as live, and gets ``b + w1 logit(s1)``; one that passes adds stage 2's
    evidence. Both paths share stage 1's weight and one fit, so their scores are on one scale
    and one set of bands applies to either. Classes are weighted to balance, which keeps the
    intercept from following the training folds' share of fights.
    """
    labels = np.asarray(labels, dtype=np.int64)
    stage1 = np.asarray(stage1, dtype=np.float64)
    stage2 = np.asarray(stage2, dtype=np.float64)
    cut = choose_gate(labels, stage1, gate_recall)
    passed = stage1 >= cut
    if np.isnan(stage2[passed]).any():
        raise ValueError("stage-2 scores are missing for clips that pass the gate")

    def rate(mask: np.ndarray) -> float:
        return float(passed[mask].mean()) if mask.any() else float("nan")

    gate = Gate(
        stage=stage_names[0],
        cut=cut,
        rule=f"highest stage-1 cut keeping >= {gate_recall:.0%} of violent clips "
        "(out-of-fold clip scores)",
        pass_rate_violent=rate(labels == 1),
        pass_rate_non_violent=rate(labels == 0),
    )
    logit1 = np.vectorize(logit)(stage1)
    logit2 = np.where(passed, np.vectorize(logit)(np.nan_to_num(stage2, nan=0.5)), 0.0)
    if not fit_intercept:
        return CascadeFit(gate, _no_intercept_fusion(logit1, logit2, labels, c, stage_names))
    x = np.stack([logit1, logit2, passed.astype(np.float64)], axis=1)
    if passed.all() or not passed.any():
        x = x[:, :2]  # the indicator would duplicate the intercept
    coef, intercept = _balanced_logistic(x, labels, c)
    pass_shift = float(coef[2]) if len(coef) > 2 else 0.0
    fusion = Fusion(
        kind="stacking-logistic",
        passed=LogisticModel(stage_names, (float(coef[0]), float(coef[1])), intercept + pass_shift),
        gated_out=LogisticModel(stage_names[:1], (float(coef[0]),), intercept),
        description=(
            "one logistic regression (L2, C="
            f"{c:g}, classes balanced) fitted on out-of-fold clip scores: "
            "z = b + w1 logit(stage1) + passed (w2 logit(stage2) + b2); passed: "
            "sigmoid(b + b2 + w1 logit(stage1) + w2 logit(stage2)); stopped by the gate: "
            "sigmoid(b + w1 logit(stage1)). One fit, so both are on one scale"
        ),
    )
    return CascadeFit(gate, fusion)


def _no_intercept_fusion(
    logit1: np.ndarray,
    logit2: np.ndarray,
    labels: np.ndarray,
    c: float,
    stage_names: tuple[str, str],
) -> Fusion:
    """``z = w1 logit(s1) + w2 passed logit(s2)``, no intercept, classes unweighted (as the
    pose stage's ``LogisticStack``); ``logit2`` is 0 where the gate stopped the clip."""
    from sklearn.linear_model import LogisticRegression

    x = np.stack([logit1, logit2], axis=1)
    if len(np.unique(labels)) < 2:
        coef = np.zeros(2)
    else:
        model = LogisticRegression(C=c, max_iter=1000, fit_intercept=False)
        model.fit(x, labels)
        coef = model.coef_[0].astype(np.float64)
    return Fusion(
        kind="stacking-logistic-no-intercept",
        passed=LogisticModel(stage_names, (float(coef[0]), float(coef[1])), 0.0),
        gated_out=LogisticModel(stage_names[:1], (float(coef[0]),), 0.0),
        description=(
            f"one logistic regression (L2, C={c:g}, no intercept) fitted on out-of-fold clip "
            "scores of every clip: z = w1 logit(stage1) + passed * w2 logit(stage2); passed: "
            "sigmoid(w1 logit(stage1) + w2 logit(stage2)); stopped by the gate: "
            "sigmoid(w1 logit(stage1)) (the same fit with stage 2 at 0.5, no evidence), so "
            "both paths are on one scale"
        ),
    )


def cross_fit(
    labels: np.ndarray,
    stage1: np.ndarray,
    stage2: np.ndarray,
    folds: np.ndarray,
    inner_stage2: Mapping[Any, np.ndarray] | None = None,
    **options: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Fused OOF scores where each fold's gate and fusion were fitted on the other folds only.

    ``inner_stage2[fold]`` (optional, full length): the stage-2 scores to fit that fold's
    fusion on, for the other folds' clips, from stage-2 models that never saw ``fold`` (nested
    CV); without it the fusion is fitted on ``stage2`` itself. The fold is always scored with
    ``stage2``. Returns (fused scores, whether each clip passed its fold's gate).
    """
    labels = np.asarray(labels, dtype=np.int64)
    stage1 = np.asarray(stage1, dtype=np.float64)
    stage2 = np.asarray(stage2, dtype=np.float64)
    folds = np.asarray(folds)
    fused = np.full(len(labels), np.nan)
    passed = np.zeros(len(labels), dtype=bool)
    for fold in np.unique(folds):
        test = folds == fold
        fitting = stage2 if inner_stage2 is None else np.asarray(inner_stage2[fold])
        fit = fit_cascade(labels[~test], stage1[~test], fitting[~test], **options)
        fused[test] = fit.fused(stage1[test], stage2[test])
        passed[test] = stage1[test] >= fit.gate.cut
    return fused, passed
