"""Score every clip of a dataset folder with a model version and report clip-level metrics.

    python -m ml.evaluate --data DIR [--model ARTIFACT_DIR] [--per-clip FILE.csv] [--plot FILE.png]

The last line of stdout is one JSON object (accuracy, roc_auc, f1, precision, recall, n,
skipped, confusion_matrix, ...). A clip is scored as training scored its out-of-fold clips:
stage 1 (the CNN) is the mean of its overlapping windows' scores; with a cascade card, stage 2
(pose) scores the clips whose stage-1 score passes the gate, and the card's fusion gives the
final score. A clip counts as violent at or above the card's ``decision`` threshold (the yes/no
cut chosen on out-of-fold scores). ``at_high`` repeats the metrics at the police cut,
``at_low`` at the expert cut, each with the share of non-violent clips at or above it;
``non_violent_to_experts`` is the share of non-violent clips in the expert band [low, high).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ml.datasets import DatasetLayoutError, scan_dataset
from ml.metrics import classification_report
from ml.model_card import Thresholds
from ml.preprocess import InputSpec
from ml.runtime import (
    CascadeDetector,
    ModelFilesError,
    WindowScore,
    default_model_dir,
    mean_window_score,
)
from ml.train_cascade import save_cascade_plot
from ml.video import VideoDecodeError, decode_frames


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    return value


class Stage1Only(Protocol):
    """A detector without a cascade (``ViolenceDetector``, a test double): stage 1 is final."""

    spec: InputSpec
    thresholds: Thresholds
    version: str

    def predict(self, windows: np.ndarray) -> np.ndarray: ...


Detector = CascadeDetector | Stage1Only


def score_file(path: Path, detector: Detector) -> WindowScore:
    """A clip's scores as training computed its out-of-fold ones: stage 1 the mean over its
    windows; stage 2, where the gate passes, over its pose windows; fused by the card's model.
    Raises VideoDecodeError (or ValueError for a clip of one frame)."""
    spec = detector.spec
    # Resized as decoded: a long high-resolution clip stays a few MB in memory.
    frames = decode_frames(path, fps=spec.fps, spec=spec)
    if len(frames) < 2:
        raise ValueError("fewer than 2 frames")
    if isinstance(detector, CascadeDetector):
        stage1 = mean_window_score(detector.stage1.predict, frames, spec)
        passes = bool(detector.gate_passes([stage1])[0])
        # Stage 2 streams the file again at the pose rate: full-size frames, one at a time.
        return detector.fuse(stage1, detector.score_stage2_file(path) if passes else None)
    stage1 = mean_window_score(detector.predict, frames, spec)
    return WindowScore(stage1, None, stage1, detector.thresholds.band(stage1))


def cut_report(labels: np.ndarray, scores: np.ndarray, cut: float) -> dict[str, Any]:
    """Precision and recall at a cut, and the share of non-violent clips at or above it."""
    report = classification_report(labels, scores, cut)
    calm = labels == 0
    report["non_violent_share_at_or_above"] = (
        float((scores[calm] >= cut).mean()) if calm.any() else float("nan")
    )
    return report


def evaluate(
    data: str | os.PathLike[str],
    detector: Detector,
    progress: bool = True,
    per_clip_csv: Path | None = None,
    plot: Path | None = None,
) -> dict[str, Any]:
    """Score every readable clip of ``data``; unreadable files are skipped and listed."""
    from tqdm import tqdm

    started = time.perf_counter()
    scan = scan_dataset(data)
    labels: list[int] = []
    results: list[WindowScore] = []
    per_clip = []
    for record in tqdm(
        scan.records, desc="scoring", disable=not progress, unit="clip", file=sys.stderr
    ):
        try:
            scored = score_file(record.path, detector)
        except VideoDecodeError as error:
            scan.skip(record.path, str(error))
            continue
        except ValueError as error:
            scan.skip(record.path, str(error))
            continue
        except OSError as error:
            scan.skip(record.path, f"cannot read file ({error})")
            continue
        labels.append(record.label)
        results.append(scored)
        per_clip.append(
            {
                "clip": str(record.path),
                "label": record.label,
                "stage1": round(scored.stage1, 5),
                "stage2": None if scored.stage2 is None else round(scored.stage2, 5),
                "score": round(scored.fused, 5),
                "band": scored.band,
            }
        )
    bands = detector.thresholds
    label_array = np.array(labels, dtype=np.int64)
    score_array = np.array([r.fused for r in results], dtype=np.float64)
    report = classification_report(label_array, score_array, bands.verdict_cut)
    calm = label_array == 0
    expert = (score_array >= bands.low) & (score_array < bands.high)
    report.update(
        {
            "skipped": len(scan.skipped),
            "skipped_files": [{"path": p, "reason": r} for p, r in scan.skipped],
            "layout": scan.layout,
            "model_version": detector.version,
            "thresholds": {"low": bands.low, "high": bands.high, "decision": bands.verdict_cut},
            # The police cut (high) and the expert cut (low): what each band's action gets.
            "at_high": cut_report(label_array, score_array, bands.high),
            "at_low": cut_report(label_array, score_array, bands.low),
            "non_violent_to_experts": float(expert[calm].mean()) if calm.any() else float("nan"),
            "stage2_share": (
                float(np.mean([r.stage2 is not None for r in results])) if results else 0.0
            ),
            "seconds": round(time.perf_counter() - started, 2),
            "clips": per_clip,
        }
    )
    if per_clip_csv is not None:
        write_per_clip(per_clip_csv, per_clip)
    if plot is not None and len(np.unique(label_array)) == 2:
        curves = {"fused" if isinstance(detector, CascadeDetector) else "score": score_array}
        if isinstance(detector, CascadeDetector) and detector.card.is_cascade:
            curves = {"stage 1 (CNN)": np.array([r.stage1 for r in results]), **curves}
        save_cascade_plot(label_array, curves, bands, plot, f"{detector.version} on {data}")
    return dict(_finite_or_none(report))


def write_per_clip(path: Path, rows: list[dict[str, Any]]) -> None:
    """clip, label, stage-1 score, stage-2 score (empty: gated out), fused score, band."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip", "label", "stage1", "stage2", "fused", "band"])
        for row in rows:
            writer.writerow(
                [
                    row["clip"],
                    row["label"],
                    row["stage1"],
                    "" if row["stage2"] is None else row["stage2"],
                    row["score"],
                    row["band"],
                ]
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ml.evaluate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data", required=True, help="dataset folder in a supported layout")
    parser.add_argument(
        "--model", type=Path, default=None, help="artifact folder (default: shipped)"
    )
    parser.add_argument(
        "--per-clip",
        type=Path,
        default=None,
        metavar="FILE.csv",
        help="write clip, label, stage-1, stage-2, fused score and band of every clip",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="FILE.png",
        help="draw the ROC with the police and expert cuts",
    )
    parser.add_argument("--threads", type=int, default=1, help="pose model threads")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(message)s", stream=sys.stderr
    )
    model_dir = args.model or default_model_dir()
    try:
        detector = CascadeDetector.load(model_dir, pose_threads=args.threads)
    except (ModelFilesError, FileNotFoundError, OSError, ValueError, KeyError) as error:
        print(f"cannot load model from {model_dir}: {error}", file=sys.stderr)
        return 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skips are logged to stderr and counted
            report = evaluate(
                args.data,
                detector,
                progress=not args.no_progress,
                per_clip_csv=args.per_clip,
                plot=args.plot,
            )
    except DatasetLayoutError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = {
        k: report[k] for k in ("accuracy", "roc_auc", "f1", "precision", "recall", "n", "skipped")
    }
    print(
        f"model {report['model_version']} on {args.data}: "
        + ", ".join(f"{k}={v}" for k, v in summary.items())
    )
    print(json.dumps(report, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
