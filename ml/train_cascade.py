"""Build the cascade on top of a trained stage 1 and its out-of-fold clip scores.

Called by ``python -m ml.train`` after it trains the CNN, or alone with ``--stage1-from DIR``
to reuse a trained CNN (its model, card and stored out-of-fold scores) without training it
again. The folds are rebuilt as ``ml.train`` builds them and checked against the stage-1
card's test groups: stacking on out-of-fold scores is only honest on the folds they came from.

Steps: the pose stage's window features of every clip (``ml.pose_stage.dataset_windows``, its
chosen design; keypoints cached under ``.ml-cache/pose``) -> stage-2 out-of-fold clip scores on
the same folds, and nested ones for fitting each fold's fusion -> gate and no-intercept fusion
cross-fitted on the out-of-fold scores (``ml.fusion``) -> bands chosen on the fused
out-of-fold scores with the rules of ``ml.metrics.choose_thresholds`` -> final pose stage and
fusion fitted on everything -> ``model_card.json`` (schema 2), ``pose_stage.json``,
``stage1_card.json``, plots.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.datasets import ClipRecord, scan_dataset
from ml.fusion import DEFAULT_GATE_RECALL, cross_fit, fit_cascade
from ml.input_spec import InputSpec
from ml.metrics import choose_thresholds, classification_report, save_plots
from ml.model_card import (
    CARD_FILE,
    SCHEMA_CASCADE,
    CrossValidation,
    FoldFigures,
    ModelCard,
    OutOfFold,
    StageCard,
    Thresholds,
)
from ml.pose import PoseEstimator, default_pose_model_path
from ml.pose_features import VIEW_FEATURE_NAMES
from ml.pose_stage import (
    POSE_FPS,
    POSE_TILES,
    POSE_VIEWS,
    TRAIN_HOP_SECONDS,
    WINDOW_SECONDS,
    PoseStage,
    dataset_windows,
)
from ml.runtime import STAGE2_MIN_LONG_SIDE

logger = logging.getLogger(__name__)

STAGE1_CARD_FILE = "stage1_card.json"
POSE_STAGE_FILE = "pose_stage.json"
# The pose stage's design as chosen on grouped CV (ml.pose_stage, ml/README.md "Pose stage").
DEFAULT_POSE_FPS = POSE_FPS
DEFAULT_POSE_C = 0.3


@dataclass(frozen=True)
class Stage1Source:
    """A trained stage 1: its schema-1 card (or a ``--cv-only`` run's cv.json) and folder."""

    folder: Path
    card: dict[str, Any]
    labels: np.ndarray
    scores: np.ndarray
    has_model: bool


def read_stage1(folder: Path) -> Stage1Source:
    """Stage 1 from an artifact folder: a schema-1 card, a cascade's ``stage1_card.json``, or
    the ``cv.json`` of ``ml.train --cv-only`` (figures only, nothing to ship)."""
    card_path = folder / CARD_FILE
    if card_path.is_file():
        card = json.loads(card_path.read_text(encoding="utf-8"))
        if card.get("schema") == SCHEMA_CASCADE:
            card = json.loads((folder / STAGE1_CARD_FILE).read_text(encoding="utf-8"))
        oof = card["cross_validation"]["out_of_fold"]
        return Stage1Source(
            folder,
            card,
            np.asarray(oof["labels"], dtype=np.int64),
            np.asarray(oof["scores"], dtype=np.float64),
            (folder / card.get("model_file", "model.keras")).is_file(),
        )
    cv_path = folder / "cv.json"
    if cv_path.is_file():
        cv = json.loads(cv_path.read_text(encoding="utf-8"))
        card = {"cross_validation": {"folds": cv["folds"]}, "training": {"config": {"seed": 0}}}
        return Stage1Source(
            folder,
            card,
            np.asarray(cv["labels"], dtype=np.int64),
            np.asarray(cv["oof"], dtype=np.float64),
            False,
        )
    raise FileNotFoundError(f"{folder}: neither {CARD_FILE} nor cv.json")


def dataset_records(data: Sequence[str], stage1: Stage1Source) -> list[ClipRecord]:
    """The clips in ml.train's order, less those it skipped; must match the stored labels."""
    skipped = {entry["path"] for entry in stage1.card.get("training_data", {}).get("skipped", [])}
    records = [
        record
        for folder in data
        for record in scan_dataset(folder).records
        if str(record.path) not in skipped
    ]
    labels = [record.label for record in records]
    if labels != stage1.labels.tolist():
        raise ValueError(
            f"the data ({len(records)} clips) is not what stage 1's out-of-fold scores were "
            f"computed on ({len(stage1.labels)} clips): same folders, same order"
        )
    return records


def stage1_folds(records: Sequence[ClipRecord], stage1: Stage1Source) -> np.ndarray:
    """Each clip's fold (1-based), rebuilt as ml.train builds them and checked against the
    stage-1 card's test groups."""
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.array([r.label for r in records])
    groups = np.array([str(r.group) for r in records])
    stored = stage1.card["cross_validation"]["folds"]
    seed = int(stage1.card.get("training", {}).get("config", {}).get("seed", 0))
    splitter = StratifiedGroupKFold(n_splits=len(stored), shuffle=True, random_state=seed)
    folds = np.zeros(len(records), dtype=np.int64)
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
        rebuilt = sorted({str(g) for g in groups[test]})
        if rebuilt != sorted(stored[k]["test_groups"]) or len(test) != stored[k]["n_test"]:
            raise ValueError(f"fold {k + 1}: test groups {rebuilt} are not stage 1's")
        folds[test] = k + 1
    return folds


def pose_windows(
    data: Sequence[str], records: Sequence[ClipRecord], *, pose_fps: float, progress: bool
) -> tuple[list[np.ndarray], str]:
    """The pose stage's window features (n_windows, 132) of every record, in order.

    The pose stage's own ``dataset_windows`` computes them (its chosen design: whole frame +
    ``POSE_TILES`` tiles, both views side by side, ``WINDOW_SECONDS`` windows every
    ``TRAIN_HOP_SECONDS``; keypoints through ``.ml-cache/pose``); this only lines them up with
    stage 1's records. Returns the features and the pose model's sha256.
    """
    by_path: dict[Path, np.ndarray] = {}
    for folder in data:
        if progress:
            print(f"pose window features of {folder} ...", flush=True)  # noqa: T201
        windows, _, _, names = dataset_windows(Path(folder), fps=pose_fps)
        for name, clip_windows in zip(names, windows, strict=True):
            by_path[(Path(folder) / name).resolve()] = clip_windows
    missing = [str(r.path) for r in records if Path(r.path).resolve() not in by_path]
    if missing:
        raise ValueError(f"no pose windows for {len(missing)} clip(s), e.g. {missing[0]}")
    estimator = PoseEstimator.load(tiles=POSE_TILES)
    return [by_path[Path(r.path).resolve()] for r in records], estimator.model_sha256


def _fit_score(
    windows: Sequence[np.ndarray], labels: np.ndarray, train: np.ndarray, test: np.ndarray, c: float
) -> np.ndarray:
    """The pose stage fitted on the training clips (``PoseStage.fit_clips``: each clip counts
    once), scoring the test clips (``score_clip``: mean of window scores)."""
    stage = PoseStage(C=c).fit_clips([windows[int(i)] for i in train], labels[train])
    return np.array([stage.score_clip(windows[int(i)]) for i in test])


def stage2_out_of_fold(
    windows: Sequence[np.ndarray], labels: np.ndarray, folds: np.ndarray, c: float
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Stage-2 out-of-fold clip scores, and for each fold k the nested scores of the other
    folds' clips (each from a pose stage fitted without fold k and without the clip's fold):
    what ``ml.pose_stage.grouped_cv`` fits its stacking on, so the fusion never sees scores of a
    pose stage that was trained on the fold it will score. With fewer than 3 folds there is no
    inner CV (no clips left to fit on): the mapping is empty and each fold's fusion is fitted on
    the other folds' out-of-fold scores."""
    oof = np.full(len(labels), np.nan)
    inner: dict[int, np.ndarray] = {}
    ids = [int(k) for k in np.unique(folds)]
    for k in ids:
        oof[folds == k] = _fit_score(
            windows, labels, np.flatnonzero(folds != k), np.flatnonzero(folds == k), c
        )
        nested = np.full(len(labels), np.nan)
        for j in ids:
            if j == k or len(ids) < 3:
                continue
            train = np.flatnonzero((folds != k) & (folds != j))
            nested[folds == j] = _fit_score(windows, labels, train, np.flatnonzero(folds == j), c)
        if len(ids) >= 3:
            inner[k] = nested
    return oof, inner


# How far a chosen cut is moved to satisfy 0 < low < high < 1 when the data leave no room.
BAND_NUDGE = 1e-6


def strict_bands(chosen: dict[str, Any]) -> dict[str, Any]:
    """``choose_thresholds``' cuts moved just inside 0 < low < high < 1 (``Thresholds``' rule).

    On few or badly separated clips the 95 %-recall cut can reach the police cut (the expert
    band would be empty) or a cut can sit at 0 or 1; the card says when that happened.
    """
    out = dict(chosen)
    low, high, decision = float(out["low"]), float(out["high"]), float(out["decision"])
    high = min(max(high, 2 * BAND_NUDGE), 1.0 - BAND_NUDGE)
    low = min(max(low, BAND_NUDGE), high - BAND_NUDGE)
    decision = min(max(decision, BAND_NUDGE), 1.0 - BAND_NUDGE)
    if (low, high, decision) != (out["low"], out["high"], out["decision"]):
        out["method"] = (
            str(out.get("method", "")) + "; moved by at most a hair to keep 0 < low < high < 1 "
            f"(chosen: low {out['low']:.6g}, high {out['high']:.6g}, "
            f"decision {out['decision']:.6g})"
        )
    out.update(low=low, high=high, decision=decision)
    return out


def _auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores)) if len(np.unique(labels)) == 2 else None


def cut_figures(labels: np.ndarray, scores: np.ndarray, bands: Thresholds) -> dict[str, Any]:
    """What the bands do to out-of-fold clips: precision and recall at the police cut
    (``high``) and the expert cut (``low``), and where the non-violent clips end up."""
    violent, calm = labels == 1, labels == 0

    def at(cut: float) -> dict[str, float | None]:
        flagged = scores >= cut
        return {
            "cut": cut,
            "precision": float((flagged & violent).sum() / flagged.sum())
            if flagged.any()
            else None,
            "recall": float((flagged & violent).sum() / max(1, violent.sum())),
        }

    expert = (scores >= bands.low) & (scores < bands.high)
    return {
        "police_cut": at(bands.high),
        "expert_cut": at(bands.low),
        "non_violent_to_experts": float(expert[calm].mean()) if calm.any() else None,
        "non_violent_to_police": float((scores[calm] >= bands.high).mean()) if calm.any() else None,
        "non_violent_at_or_above_low": float((scores[calm] >= bands.low).mean())
        if calm.any()
        else None,
    }


def per_fold(labels: np.ndarray, scores: np.ndarray, folds: np.ndarray) -> list[float | None]:
    return [_auc(labels[folds == k], scores[folds == k]) for k in np.unique(folds)]


def summary(labels: np.ndarray, scores: np.ndarray, folds: np.ndarray) -> dict[str, Any]:
    aucs = [a for a in per_fold(labels, scores, folds) if a is not None]
    return {
        "fold_roc_auc": [round(a, 4) for a in aucs],
        "fold_roc_auc_mean": round(float(np.mean(aucs)), 4),
        "fold_roc_auc_sd": round(float(np.std(aucs, ddof=1)), 4) if len(aucs) > 1 else None,
        "pooled_roc_auc": round(float(_auc(labels, scores) or float("nan")), 4),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_cascade_plot(
    labels: np.ndarray,
    curves: dict[str, np.ndarray],
    bands: Thresholds,
    path: Path,
    title: str,
) -> None:
    """ROC curves of each score, with the police and expert cuts of the last one marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    figure, axis = plt.subplots(figsize=(5, 5), dpi=100)
    for name, scores in curves.items():
        fpr, tpr, _ = roc_curve(labels, scores)
        axis.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(labels, scores):.3f})")
    final = list(curves.values())[-1]
    for cut, label, marker in ((bands.high, "police cut", "o"), (bands.low, "expert cut", "s")):
        flagged = final >= cut
        axis.plot(
            flagged[labels == 0].mean(),
            flagged[labels == 1].mean(),
            marker=marker,
            markersize=9,
            linestyle="none",
            label=f"{label} {cut:.3f}",
        )
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey")
    axis.set_xlabel("false positive rate (non-violent clips flagged)")
    axis.set_ylabel("true positive rate (fights flagged)")
    axis.set_title(title, fontsize=9)
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def build_cascade(
    *,
    data: Sequence[str],
    stage1_dir: Path,
    out: Path,
    cache_dir: Path,
    pose_fps: float = DEFAULT_POSE_FPS,
    gate_recall: float = DEFAULT_GATE_RECALL,
    pose_c: float = DEFAULT_POSE_C,
    cv_only: bool = False,
    progress: bool = True,
    command: str = "",
    cascade_commit: str = "unknown",
    started: float | None = None,
) -> dict[str, Any]:
    """Build (or with ``cv_only`` only measure) the cascade; returns its CV figures."""
    started = time.perf_counter() if started is None else started
    stage1 = read_stage1(stage1_dir)
    if not cv_only and not stage1.has_model:
        raise FileNotFoundError(f"{stage1_dir} holds no trained stage 1 to ship")
    spec = InputSpec.from_dict(stage1.card.get("input_spec", {}))
    records = dataset_records(data, stage1)
    labels = stage1.labels
    folds = stage1_folds(records, stage1)
    windows, pose_sha = pose_windows(data, records, pose_fps=pose_fps, progress=progress)
    stage2, inner_stage2 = stage2_out_of_fold(windows, labels, folds, pose_c)
    fused, passed = cross_fit(
        labels, stage1.scores, stage2, folds, inner_stage2 or None, gate_recall=gate_recall
    )
    chosen = choose_thresholds(labels, fused)
    chosen["method"] = str(chosen["method"]).replace(
        "out-of-fold clip scores", "fused out-of-fold clip scores (gate and fusion cross-fitted)"
    )
    bands = Thresholds.from_dict(strict_bands(chosen))
    figures = {
        "stage1": summary(labels, stage1.scores, folds),
        "stage2": summary(labels, stage2, folds),
        "fused": summary(labels, fused, folds),
        "gate_pass_rate_out_of_fold": {
            "violent": round(float(passed[labels == 1].mean()), 4),
            "non_violent": round(float(passed[labels == 0].mean()), 4),
        },
        "thresholds": bands.to_dict(),
        "at_cuts": cut_figures(labels, fused, bands),
    }
    print(json.dumps({"cascade_cv": figures}), flush=True)  # noqa: T201
    out.mkdir(parents=True, exist_ok=True)
    oof = OutOfFold(
        labels=tuple(int(v) for v in labels),
        scores=tuple(round(float(v), 6) for v in fused),
        stage1=tuple(round(float(v), 6) for v in stage1.scores),
        stage2=tuple(round(float(v), 6) for v in stage2),
        folds=tuple(int(v) for v in folds),
        clips=tuple(str(Path(r.path).relative_to(Path(r.path).parents[1])) for r in records),
    )
    if cv_only:
        (out / "cascade_cv.json").write_text(
            json.dumps({**figures, "out_of_fold": oof.to_dict()}, indent=1) + "\n"
        )
        return figures

    final = fit_cascade(labels, stage1.scores, stage2, gate_recall=gate_recall)
    pose_stage = PoseStage(C=pose_c).fit_clips(windows, labels)
    if out.resolve() != stage1_dir.resolve():
        shutil.copy2(stage1_dir / stage1.card.get("model_file", "model.keras"), out)
    stage1_card_path = out / STAGE1_CARD_FILE
    stage1_card_path.write_text(json.dumps(stage1.card, indent=2) + "\n", encoding="utf-8")
    design = {
        "fps": pose_fps,
        "tiles": POSE_TILES,
        "views": POSE_VIEWS,
        "window_seconds": WINDOW_SECONDS,
        "hop_seconds": TRAIN_HOP_SECONDS,
    }
    (out / POSE_STAGE_FILE).write_text(
        json.dumps({**pose_stage.to_dict(), "design": design}) + "\n", encoding="utf-8"
    )
    save_cascade_plot(
        labels,
        {"stage 1 (CNN)": stage1.scores, "stage 2 (pose)": stage2, "fused cascade": fused},
        bands,
        out / "roc.png",
        "grouped 5-fold CV, out-of-fold clip scores",
    )
    plots = save_plots(labels, fused, bands.decision, out, "fused out-of-fold CV")
    # save_plots drew a plain ROC over ours; ours (both cuts, every stage) is the one kept.
    save_cascade_plot(
        labels,
        {"stage 1 (CNN)": stage1.scores, "stage 2 (pose)": stage2, "fused cascade": fused},
        bands,
        out / "roc.png",
        "grouped 5-fold CV, out-of-fold clip scores",
    )
    stage1_bands = stage1.card["thresholds"]
    data_hash = str(stage1.card.get("training_data", {}).get("sha256", "unknown"))
    commit = str(stage1.card.get("code_version", {}).get("git_commit", "unknown"))
    stages = (
        StageCard(
            name="cnn",
            kind="cnn-bilstm",
            file=str(stage1.card.get("model_file", "model.keras")),
            sha256=_sha256(out / stage1.card.get("model_file", "model.keras")),
            summary=str(stage1.card.get("architecture", {}).get("summary", "")),
            details={
                "card": STAGE1_CARD_FILE,
                "version": stage1.card["version"],
                "runs_on": "every window",
                "input": f"{spec.window_frames} frames at {spec.fps:g} fps (any size; resized "
                f"to {spec.height}x{spec.width})",
                "thresholds": {
                    k: stage1_bands[k] for k in ("low", "high", "decision") if k in stage1_bands
                },
                "cross_validation": figures["stage1"],
            },
        ),
        StageCard(
            name="pose",
            kind="pose-keypoints-logistic",
            file=POSE_STAGE_FILE,
            sha256=_sha256(out / POSE_STAGE_FILE),
            summary="MoveNet MultiPose Lightning keypoints (up to 6 people) of full-size "
            f"frames decoded at {pose_fps:g} fps, each run whole and as {POSE_TILES} "
            "overlapping tiles (merged) -> track and pair features per window of both views "
            f"side by side ({len(VIEW_FEATURE_NAMES)}, ml.pose_features) -> log1p, "
            f"standardise, L2 logistic regression (C={pose_c:g}); clip score = mean over "
            f"windows of {WINDOW_SECONDS:g} s every {TRAIN_HOP_SECONDS:g} s",
            details={
                "runs_on": "windows that pass the gate",
                "input": f"full-size RGB frames decoded at {pose_fps:g} fps "
                "(ml.video.decode_frames(path, fps=...))",
                **design,
                "min_long_side": STAGE2_MIN_LONG_SIDE,
                "features": len(VIEW_FEATURE_NAMES),
                "pose_model": {
                    "file": default_pose_model_path().name,
                    "sha256": pose_sha,
                    "provenance": "ml/artifacts/pose/provenance.json",
                },
                "cross_validation": figures["stage2"],
            },
        ),
    )
    card = ModelCard(
        schema=SCHEMA_CASCADE,
        version=f"cascade-{data_hash[:8]}-{cascade_commit[:7]}-{commit[:7]}",
        created_utc=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        input_spec=spec,
        thresholds=bands,
        stages=stages,
        gate=final.gate,
        fusion=final.fusion,
        cross_validation=CrossValidation(
            scheme=str(stage1.card["cross_validation"].get("scheme", ""))
            + "; stage 2 fitted on the same folds; gate and fusion cross-fitted (refitted "
            "for each fold on the other folds' out-of-fold stage-1 scores and "
            + (
                "nested stage-2 scores from pose stages that never saw that fold"
                if inner_stage2
                else "out-of-fold stage-2 scores (too few folds to nest)"
            )
            + "), so every fused out-of-fold score comes from models that never saw the "
            "clip's source group",
            folds=tuple(
                FoldFigures(
                    fold=int(k),
                    roc_auc=auc,
                    n_test=int((folds == k).sum()),
                    test_groups=tuple(
                        sorted(
                            {str(r.group) for r, f in zip(records, folds, strict=True) if f == k}
                        )
                    ),
                    details={
                        "stage1_roc_auc": s1,
                        "stage2_roc_auc": s2,
                        "gate_pass_violent": float(passed[(folds == k) & (labels == 1)].mean()),
                        "gate_pass_non_violent": float(passed[(folds == k) & (labels == 0)].mean()),
                    },
                )
                for k, auc, s1, s2 in zip(
                    np.unique(folds),
                    per_fold(labels, fused, folds),
                    per_fold(labels, stage1.scores, folds),
                    per_fold(labels, stage2, folds),
                    strict=True,
                )
            ),
            out_of_fold=oof,
            details={
                "summary": {k: figures[k] for k in ("stage1", "stage2", "fused")},
                "gate_pass_rate_out_of_fold": figures["gate_pass_rate_out_of_fold"],
                "at_cuts": figures["at_cuts"],
                "pooled_oof_at_decision": classification_report(labels, fused, bands.decision),
                "pooled_oof_at_high": classification_report(labels, fused, bands.high),
                "pooled_oof_at_low": classification_report(labels, fused, bands.low),
            },
        ),
        details={
            "kind": "cascade",
            # Read by the camera settings and older tools as on schema-1 cards.
            "recommended_fps": spec.fps,
            "window_seconds": spec.window_seconds,
            "code_version": {"git_commit": cascade_commit},
            "clip_score": "stage 1: mean of window scores (windows of window_seconds every "
            "quarter window); the gate reads it; stage 2: mean over pose windows (of frames "
            "decoded at the pose fps); fused by the fusion model",
            "training_data": stage1.card.get("training_data", {}),
            "training": {
                "command": command,
                "stage1_from": str(stage1_dir),
                "pose_fps": pose_fps,
                "gate_recall": gate_recall,
                "pose_c": pose_c,
                "wall_seconds": round(time.perf_counter() - started, 1),
                "git_commit": cascade_commit,
            },
            "plots": plots,
        },
    )
    card.dump(out)
    print(f"wrote the cascade {card.version} to {out}", flush=True)  # noqa: T201
    return figures
