"""Score every clip of a dataset folder with a model version and report clip-level metrics.

    python -m ml.evaluate --data DIR [--model ARTIFACT_DIR]

The last line of stdout is one JSON object (accuracy, roc_auc, f1, precision, recall, n,
skipped, confusion_matrix, ...). A clip's score is the mean of its overlapping windows' scores;
it counts as violent at or above the model card's ``decision`` threshold (the yes/no cut
chosen on out-of-fold scores; ``high`` for older cards). ``at_high`` repeats the metrics at the
police-report cut, ``at_low`` at the expert-review cut.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ml.datasets import DatasetLayoutError, scan_dataset
from ml.metrics import classification_report
from ml.preprocess import resize_frame
from ml.runtime import ViolenceDetector, default_model_dir, mean_window_score
from ml.video import VideoDecodeError, decode_frames


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    return value


def evaluate(
    data: str | os.PathLike[str], detector: ViolenceDetector, progress: bool = True
) -> dict[str, Any]:
    """Score every readable clip of ``data``; unreadable files are skipped and listed."""
    from tqdm import tqdm

    started = time.perf_counter()
    scan = scan_dataset(data)
    labels: list[int] = []
    scores: list[float] = []
    per_clip = []
    for record in tqdm(
        scan.records, desc="scoring", disable=not progress, unit="clip", file=sys.stderr
    ):
        try:
            # Resized as decoded: a long high-resolution clip stays a few MB in memory.
            frames = decode_frames(
                record.path,
                fps=detector.spec.fps,
                transform=lambda frame: resize_frame(frame, detector.spec),
            )
        except VideoDecodeError as error:
            scan.skip(record.path, str(error))
            continue
        except OSError as error:
            scan.skip(record.path, f"cannot read file ({error})")
            continue
        if len(frames) < 2:
            scan.skip(record.path, "fewer than 2 frames")
            continue
        score = mean_window_score(detector.predict, frames, detector.spec)
        labels.append(record.label)
        scores.append(score)
        per_clip.append({"clip": str(record.path), "label": record.label, "score": round(score, 5)})
    bands = detector.thresholds
    label_array, score_array = np.array(labels, dtype=np.int64), np.array(scores)
    report = classification_report(label_array, score_array, bands.verdict_cut)
    band_reports = {
        "at_high": classification_report(label_array, score_array, bands.high),
        "at_low": classification_report(label_array, score_array, bands.low),
    }
    report.update(
        {
            "skipped": len(scan.skipped),
            "skipped_files": [{"path": p, "reason": r} for p, r in scan.skipped],
            "layout": scan.layout,
            "model_version": detector.version,
            "thresholds": {"low": bands.low, "high": bands.high, "decision": bands.verdict_cut},
            **band_reports,
            "seconds": round(time.perf_counter() - started, 2),
            "clips": per_clip,
        }
    )
    return dict(_finite_or_none(report))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ml.evaluate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data", required=True, help="dataset folder in a supported layout")
    parser.add_argument(
        "--model", type=Path, default=None, help="artifact folder (default: shipped)"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(message)s", stream=sys.stderr
    )
    model_dir = args.model or default_model_dir()
    try:
        detector = ViolenceDetector.load(model_dir)
    except (FileNotFoundError, OSError, ValueError, KeyError) as error:
        print(f"cannot load model from {model_dir}: {error}", file=sys.stderr)
        return 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skips are logged to stderr and counted
            report = evaluate(args.data, detector, progress=not args.no_progress)
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
