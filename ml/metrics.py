"""Clip-level metrics, threshold selection and plots shared by training and evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)


def classification_report(
    labels: np.ndarray, scores: np.ndarray, threshold: float
) -> dict[str, Any]:
    """Accuracy, ROC AUC, F1, precision, recall and confusion matrix at ``threshold``.

    With no clips at all (every file of a folder skipped) the metrics are NaN and the matrix
    is zeros: there is nothing to score, which is a report, not a crash.
    """
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    predicted = (scores >= threshold).astype(np.int64)
    empty = not len(labels)
    nan = float("nan")
    matrix = (
        np.zeros((2, 2), dtype=np.int64)
        if empty
        else confusion_matrix(labels, predicted, labels=[0, 1])
    )

    def rate(metric: Any) -> float:
        return nan if empty else float(metric(labels, predicted, zero_division=0))

    return {
        "n": len(labels),
        "threshold": float(threshold),
        "accuracy": nan if empty else float(accuracy_score(labels, predicted)),
        "roc_auc": float(roc_auc_score(labels, scores)) if len(np.unique(labels)) == 2 else nan,
        "f1": rate(f1_score),
        "precision": rate(precision_score),
        "recall": rate(recall_score),
        "confusion_matrix": {
            "labels": ["non_violent", "violent"],
            "rows_true_cols_predicted": matrix.tolist(),
            "tn": int(matrix[0, 0]),
            "fp": int(matrix[0, 1]),
            "fn": int(matrix[1, 0]),
            "tp": int(matrix[1, 1]),
        },
    }


def choose_decision_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The cut for a yes/no answer: the one with the best balanced accuracy on ``scores``.

    The bands below are action cuts (police at once, expert review) and sit far from the
    point where a clip is as likely violent as not; a binary verdict, as ``ml.evaluate``
    reports, needs that point. Balanced accuracy rather than accuracy, so a skewed validation
    set does not drag the cut. Ties go to the middle of the best run of cuts.
    """
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if len(np.unique(labels)) < 2:
        return 0.5
    unique = np.unique(scores)
    candidates = np.concatenate([[0.0], (unique[:-1] + unique[1:]) / 2.0, [1.0]])
    positives = labels == 1
    balanced = np.array(
        [
            ((scores[positives] >= cut).mean() + (scores[~positives] < cut).mean()) / 2.0
            for cut in candidates
        ]
    )
    best = np.flatnonzero(np.isclose(balanced, balanced.max()))
    return float(candidates[best[len(best) // 2]])


def choose_thresholds(
    labels: np.ndarray,
    scores: np.ndarray,
    min_recall: float = 0.95,
    min_precision: float = 0.90,
    min_violent_recall: float = 0.10,
) -> dict[str, Any]:
    """Pick the violent and uncertain bands on out-of-fold clip scores.

    The bands drive actions of different cost: a violent window is reported to the police at
    once, an uncertain one is watched by an expert. So ``high`` is the lowest cut at which the
    out-of-fold precision reaches ``min_precision`` (few police reports of calm scenes) while it
    still flags ``min_violent_recall`` of fights: a precision measured on the one or two
    top-scoring clips says nothing. When no such cut reaches it, the most precise cut that
    flags ``min_violent_recall`` of fights.
    ``low`` is the highest cut that keeps ``min_recall`` of violent clips at or above it, so at
    most ``1 - min_recall`` of fights fall in the calm band; everything between goes to experts.
    Cuts are midpoints between neighbouring scores so none is glued to one training clip.
    """
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    unique = np.unique(scores)
    candidates = np.concatenate([(unique[:-1] + unique[1:]) / 2.0, [1.0]])
    positives = max(1, int((labels == 1).sum()))
    high: float | None = None
    best_fallback, best_precision = 1.0, -1.0
    for cut in candidates:  # ascending: the first cut that is precise enough flags the most
        flagged = scores >= cut
        if not flagged.any():
            continue
        precision = float((flagged & (labels == 1)).sum()) / float(flagged.sum())
        recall = float((flagged & (labels == 1)).sum()) / positives
        if precision >= min_precision and recall >= min_violent_recall and high is None:
            high = float(cut)
        if recall >= min_violent_recall and precision > best_precision:
            best_fallback, best_precision = float(cut), precision
    reached = high is not None
    high = float(np.clip(high if high is not None else best_fallback, 0.0, 1.0))
    violent_scores = np.sort(scores[labels == 1])
    if len(violent_scores):
        allowed_misses = int(np.floor((1.0 - min_recall) * len(violent_scores)))
        low = float(violent_scores[allowed_misses]) - 1e-6
    else:
        low = high
    low = float(np.clip(min(low, high), 0.0, 1.0))
    flagged = scores >= high
    precision_at_high = (
        float((flagged & (labels == 1)).sum()) / float(flagged.sum()) if flagged.any() else 0.0
    )
    return {
        "low": low,
        "high": high,
        "decision": choose_decision_threshold(labels, scores),
        "precision_at_high": precision_at_high,
        "recall_at_high": float((flagged & (labels == 1)).sum()) / positives,
        "min_precision_for_high": min_precision,
        "min_recall_for_low": min_recall,
        "method": (
            "chosen on out-of-fold clip scores of grouped cross-validation: high is the lowest "
            f"cut with >= {min_precision:.0%} precision that flags >= {min_violent_recall:.0%} "
            "of fights (violent windows are reported to the police at once)"
            + (
                ""
                if reached
                else f"; not reached, so the most precise cut flagging >= "
                f"{min_violent_recall:.0%} of fights"
            )
            + f"; low is the highest cut keeping >= {min_recall:.0%} recall of violent clips, "
            "so the rest of the fights go to expert review; decision (the yes/no cut of "
            "ml.evaluate) is the cut with the best balanced accuracy; cuts are midpoints "
            "between neighbouring scores"
        ),
    }


def save_plots(
    labels: np.ndarray, scores: np.ndarray, threshold: float, folder: Path, title: str
) -> list[str]:
    """Write roc.png and confusion_matrix.png; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    if len(np.unique(labels)) == 2:
        fpr, tpr, _ = roc_curve(labels, scores)
        auc = roc_auc_score(labels, scores)
        figure, axis = plt.subplots(figsize=(4.5, 4.5), dpi=100)
        axis.plot(fpr, tpr, label=f"AUC = {auc:.3f}")
        axis.plot([0, 1], [0, 1], linestyle="--", color="grey")
        axis.set_xlabel("false positive rate")
        axis.set_ylabel("true positive rate")
        axis.set_title(f"ROC - {title}", fontsize=9)
        axis.legend(loc="lower right")
        figure.tight_layout()
        figure.savefig(folder / "roc.png")
        plt.close(figure)
        names.append("roc.png")
    matrix = confusion_matrix(labels, (scores >= threshold).astype(int), labels=[0, 1])
    figure, axis = plt.subplots(figsize=(4.5, 4), dpi=100)
    axis.imshow(matrix, cmap="Blues")
    for (row, col), value in np.ndenumerate(matrix):
        axis.text(col, row, str(value), ha="center", va="center", fontsize=14)
    axis.set_xticks([0, 1], ["non-violent", "violent"])
    axis.set_yticks([0, 1], ["non-violent", "violent"])
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"Confusion @ {threshold:.2f} - {title}", fontsize=9)
    figure.tight_layout()
    figure.savefig(folder / "confusion_matrix.png")
    plt.close(figure)
    names.append("confusion_matrix.png")
    return names
