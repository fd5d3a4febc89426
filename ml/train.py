"""Train the violence classifier: grouped k-fold cross-validation, then a final fit.

    python -m ml.train --data /work/shared/datasets/surveillance-fight

Writes ``model.keras``, ``model_card.json``, ``roc.png`` and ``confusion_matrix.png`` to
``--out`` (default ``ml/artifacts/default``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import math
import os
import shlex
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.augment import spatial_jitter, temporal_crop
from ml.cache import DEFAULT_CACHE_DIR, cached_clip, file_sha256
from ml.datasets import ClipRecord, DatasetScan, scan_dataset
from ml.metrics import choose_thresholds, classification_report, save_plots
from ml.model import ModelConfig, average_models, build_model
from ml.preprocess import InputSpec, clip_windows, preprocess_window
from ml.runtime import CARD_FILE, MODEL_FILE, default_model_dir, make_predict_fn
from ml.video import VideoDecodeError

logger = logging.getLogger(__name__)

CARD_SCHEMA = 1


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    folds: int = 5
    max_epochs: int = 32
    min_epochs: int = 15  # early stopping only (averaged_epochs=0)
    patience: int = 8  # early stopping only
    windows_per_clip: int = 4
    batch_size: int = 16
    learning_rate: float = 2e-3
    label_smoothing: float = 0.05
    # Score every window and its mirror image (test-time augmentation), in CV as in the
    # shipped model, so the thresholds are chosen on the scores the model will give.
    mirror: bool = True
    # > 0: no early stopping; train max_epochs and keep the mean of the weights of the last
    # averaged_epochs epochs (stochastic weight averaging). CV folds then train on all their
    # training groups, exactly as the final fit does. 0: early stopping on a validation split.
    averaged_epochs: int = 12


@dataclass
class Clip:
    record: ClipRecord
    frames: np.ndarray  # uint8 (N, H, W, 3) at spec.fps and model size
    sha256: str


def configure_tensorflow(seed: int, threads: int | None = None) -> None:
    """Seed every generator and size TF's thread pools to the cores we are allowed to use."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    cores = threads or len(os.sched_getaffinity(0))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(cores)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # TF already initialised in this process (tests); its pools stay as they are.
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def load_clips(
    scan: DatasetScan, spec: InputSpec, cache_dir: Path, progress: bool = True
) -> list[Clip]:
    """Decode (or read from cache) every clip; undecodable files are skipped and recorded."""
    from tqdm import tqdm

    clips = []
    for record in tqdm(scan.records, desc="decoding clips", disable=not progress, unit="clip"):
        try:
            frames = cached_clip(record.path, spec, cache_dir)
            clips.append(Clip(record, frames, file_sha256(record.path)))
        except VideoDecodeError as error:
            scan.skip(record.path, str(error))
        except OSError as error:
            scan.skip(record.path, f"cannot read file ({error})")
    return clips


def _preprocess_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)))


class WindowBatches:
    """Random augmented windows of the training clips, reproducible per (seed, epoch, batch)."""

    def __init__(self, clips: Sequence[Clip], spec: InputSpec, config: TrainConfig, seed: int):
        self.clips = list(clips)
        self.spec = spec
        self.config = config
        self.seed = seed
        self.samples = len(self.clips) * config.windows_per_clip

    def __len__(self) -> int:
        return math.ceil(self.samples / self.config.batch_size)

    def epoch(self, epoch: int) -> list[tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng([self.seed, epoch])
        order = np.tile(np.arange(len(self.clips)), self.config.windows_per_clip)
        rng.shuffle(order)
        # The random draws stay sequential (reproducible); only the preprocessing, which
        # releases the GIL in OpenCV (optical flow costs ~7 ms a window), runs on all cores.
        augmented = [
            spatial_jitter(temporal_crop(self.clips[index].frames, self.spec, rng), rng)
            for index in order
        ]
        with ThreadPoolExecutor(max_workers=_preprocess_threads()) as pool:
            windows = list(pool.map(lambda f: preprocess_window(f, self.spec), augmented))
        batches = []
        for start in range(0, len(order), self.config.batch_size):
            indices = order[start : start + self.config.batch_size]
            labels = np.array([self.clips[i].record.label for i in indices], dtype=np.float32)
            batches.append((np.stack(windows[start : start + len(indices)]), labels))
        return batches


class WeightAverage:
    """Running mean of a model's weights over the epochs they are added at."""

    def __init__(self) -> None:
        self.count = 0
        self._sums: list[np.ndarray] = []
        self._dtypes: list[np.dtype[Any]] = []

    def add(self, weights: Sequence[np.ndarray]) -> None:
        if not self.count:
            self._sums = [np.asarray(w, dtype=np.float64).copy() for w in weights]
            self._dtypes = [np.asarray(w).dtype for w in weights]
        else:
            for total, w in zip(self._sums, weights, strict=True):
                total += w
        self.count += 1

    def mean(self) -> list[np.ndarray]:
        return [
            (total / self.count).astype(dtype)
            for total, dtype in zip(self._sums, self._dtypes, strict=True)
        ]


def clip_scores(predict: Any, clips: Sequence[Clip], spec: InputSpec) -> np.ndarray:
    """Clip score = mean of the scores of its overlapping windows."""
    return np.array(
        [float(np.mean(predict(clip_windows(c.frames, spec)))) for c in clips], dtype=np.float64
    )


def fit_model(
    train: Sequence[Clip],
    val: Sequence[Clip] | None,
    spec: InputSpec,
    model_config: ModelConfig,
    config: TrainConfig,
    seed: int,
    epochs: int | None = None,
    label: str = "fit",
    progress: bool = True,
    name: str = "cnn_bilstm",
) -> tuple[Any, dict[str, Any]]:
    """Train one model. With ``val``: early stopping on validation clip AUC, best weights kept.

    Without ``val``: exactly ``epochs`` epochs. A hand-written loop rather than ``model.fit``
    keeps clip-level validation (mean over windows) and the seeded batches simple.
    """
    import keras
    import tensorflow as tf
    from sklearn.metrics import roc_auc_score
    from tqdm import tqdm

    keras.utils.set_random_seed(seed)
    model = build_model(spec, model_config, name=name)
    total_epochs = epochs or config.max_epochs
    batches = WindowBatches(train, spec, config, seed)
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=max(1, total_epochs * len(batches)), alpha=0.05
    )
    optimizer = keras.optimizers.Adam(schedule)
    loss_fn = keras.losses.BinaryCrossentropy(label_smoothing=config.label_smoothing)

    @tf.function(  # type: ignore[untyped-decorator]
        input_signature=[
            tf.TensorSpec((None, *spec.shape), tf.float32),
            tf.TensorSpec((None,), tf.float32),
        ]
    )
    def train_step(x: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            predicted = tf.reshape(model(x, training=True), [-1])
            loss = loss_fn(y, predicted) + tf.add_n(model.losses or [tf.constant(0.0)])
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return loss

    predict = make_predict_fn(model, spec)
    history: list[dict[str, float]] = []
    best_auc, best_epoch, best_weights = -1.0, 0, model.get_weights()
    best_val_loss = float("inf")
    averaging_from = total_epochs - config.averaged_epochs if config.averaged_epochs else None
    averaged = WeightAverage()
    val = None if averaging_from is not None else val
    val_labels = np.array([c.record.label for c in val]) if val else None
    bar = tqdm(range(total_epochs), desc=label, disable=not progress, unit="epoch")
    for epoch in bar:
        losses = [float(train_step(x, y)) for x, y in batches.epoch(epoch)]
        entry = {"epoch": epoch + 1, "loss": float(np.mean(losses))}
        if averaging_from is not None and epoch >= averaging_from:
            averaged.add(model.get_weights())
        if val and val_labels is not None:
            scores = clip_scores(predict, val, spec)
            auc = (
                float(roc_auc_score(val_labels, scores))
                if len(np.unique(val_labels)) == 2
                else float("nan")
            )
            entry["val_auc"] = auc
            entry["val_loss"] = float(
                np.mean(
                    -(
                        val_labels * np.log(scores + 1e-7)
                        + (1 - val_labels) * np.log(1 - scores + 1e-7)
                    )
                )
            )
            # A few validation clips make AUC saturate and tie often; a tie only counts as
            # better when the validation loss also fell, otherwise overfit epochs kept
            # resetting the patience (one fold ran to 37 epochs and lost 0.2 AUC on test).
            improved = auc > best_auc + 1e-9 or (
                abs(auc - best_auc) <= 1e-9 and entry["val_loss"] < best_val_loss
            )
            if epoch + 1 >= min(config.min_epochs, total_epochs) and improved:
                best_auc, best_epoch, best_weights = auc, epoch + 1, model.get_weights()
                best_val_loss = entry["val_loss"]
            bar.set_postfix(loss=f"{entry['loss']:.3f}", val_auc=f"{auc:.3f}")
            if epoch + 1 >= config.min_epochs and epoch + 1 - best_epoch >= config.patience:
                history.append(entry)
                break
        else:
            bar.set_postfix(loss=f"{entry['loss']:.3f}")
        history.append(entry)
    bar.close()
    if averaged.count:
        # BatchNorm's moving statistics are averaged with the rest: close enough to the
        # statistics of the averaged network after a low-learning-rate tail.
        model.set_weights(averaged.mean())
        best_epoch = total_epochs
    elif val:
        model.set_weights(best_weights)
    else:
        best_epoch = total_epochs
    return model, {"best_epoch": best_epoch, "best_val_auc": best_auc, "history": history}


def _inner_split(
    clips: Sequence[Clip], seed: int, val_fraction: float = 0.2
) -> tuple[list[Clip], list[Clip]]:
    """Validation clips carved out of the training groups (never the test fold)."""
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.array([c.record.label for c in clips])
    groups = np.array([c.record.group for c in clips])
    splits = max(2, min(round(1 / val_fraction), len(np.unique(groups))))
    splitter = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
    train_idx, val_idx = next(splitter.split(np.zeros(len(clips)), labels, groups))
    return [clips[i] for i in train_idx], [clips[i] for i in val_idx]


def cross_validate(
    clips: Sequence[Clip],
    spec: InputSpec,
    model_config: ModelConfig,
    config: TrainConfig,
    progress: bool = True,
) -> dict[str, Any]:
    """Grouped, stratified k-fold CV; returns per-fold metrics and out-of-fold clip scores."""
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.array([c.record.label for c in clips])
    groups = np.array([c.record.group for c in clips])
    splitter = StratifiedGroupKFold(n_splits=config.folds, shuffle=True, random_state=config.seed)
    oof = np.full(len(clips), np.nan)
    folds = []
    for fold, (train_idx, test_idx) in enumerate(
        splitter.split(np.zeros(len(clips)), labels, groups)
    ):
        started = time.perf_counter()
        fold_seed = config.seed * 1000 + fold
        inner_train: list[Clip]
        inner_val: list[Clip]
        if config.averaged_epochs:
            # No early stopping, so no validation split: the fold trains as the final fit does.
            inner_train, inner_val = [clips[i] for i in train_idx], []
        else:
            inner_train, inner_val = _inner_split([clips[i] for i in train_idx], fold_seed)
        model, info = fit_model(
            inner_train,
            inner_val,
            spec,
            model_config,
            config,
            fold_seed,
            label=f"fold {fold + 1}/{config.folds}",
            progress=progress,
        )
        test_clips = [clips[i] for i in test_idx]
        scored = average_models(spec, [model], mirror=config.mirror)
        scores = clip_scores(make_predict_fn(scored, spec), test_clips, spec)
        oof[test_idx] = scores
        report = classification_report(labels[test_idx], scores, 0.5)
        fold_entry = {
            "fold": fold + 1,
            "n_train": len(inner_train),
            "n_val": len(inner_val),
            "n_test": len(test_idx),
            "test_groups": sorted({str(g) for g in groups[test_idx]}),
            "best_epoch": info["best_epoch"],
            "best_val_auc": info["best_val_auc"],
            "accuracy": report["accuracy"],
            "roc_auc": report["roc_auc"],
            "f1": report["f1"],
            "seconds": round(time.perf_counter() - started, 1),
            "history": [
                {k: round(v, 4) if isinstance(v, float) else v for k, v in entry.items()}
                for entry in info["history"]
            ],
        }
        folds.append(fold_entry)
        print(
            f"fold {fold + 1}: acc {report['accuracy']:.3f} auc {report['roc_auc']:.3f} "
            f"f1 {report['f1']:.3f} best epoch {info['best_epoch']} "
            f"({fold_entry['seconds']} s)",
            flush=True,
        )

    def summary(key: str) -> dict[str, float]:
        values = np.array([f[key] for f in folds], dtype=np.float64)
        return {"mean": float(np.nanmean(values)), "sd": float(np.nanstd(values, ddof=1))}

    return {
        "folds": folds,
        "mean_sd_at_0.5": {k: summary(k) for k in ("accuracy", "roc_auc", "f1")},
        "oof_scores": oof,
        "labels": labels,
    }


def git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH is what we want here
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        dirty = subprocess.run(
            # The artifact folder being written is not a code change.
            ["git", "status", "--porcelain", "--", "ml", ":(exclude)ml/artifacts"],  # noqa: S607
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        return result.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def dataset_hash(clips: Sequence[Clip]) -> str:
    digest = hashlib.sha256()
    for clip in sorted(clips, key=lambda c: c.sha256):
        digest.update(f"{clip.sha256}:{clip.record.label}:{clip.record.group}\n".encode())
    return digest.hexdigest()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ml.train", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", required=True, action="append", help="dataset folder (repeatable)"
    )
    parser.add_argument("--out", type=Path, default=default_model_dir(), help="artifact folder")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--folds", type=int, default=TrainConfig.folds, help="0 skips CV")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--max-epochs", type=int, default=TrainConfig.max_epochs)
    parser.add_argument(
        "--final-epochs",
        type=int,
        default=None,
        help="default: --max-epochs, or the median CV best epoch with --averaged-epochs 0",
    )
    parser.add_argument("--windows-per-clip", type=int, default=TrainConfig.windows_per_clip)
    parser.add_argument(
        "--averaged-epochs",
        type=int,
        default=TrainConfig.averaged_epochs,
        help="average the weights of the last N of --max-epochs epochs instead of early stopping",
    )
    parser.add_argument("--frames", type=int, default=InputSpec.frames)
    parser.add_argument("--size", type=int, default=InputSpec.height)
    parser.add_argument("--fps", type=float, default=InputSpec.fps)
    parser.add_argument("--window-seconds", type=float, default=InputSpec.window_seconds)
    parser.add_argument("--diff-scale", type=float, default=InputSpec.diff_scale)
    parser.add_argument(
        "--appearance", choices=("centred", "foreground"), default=InputSpec.appearance
    )
    parser.add_argument("--motion", choices=("diff", "flow"), default=InputSpec.motion)
    parser.add_argument("--flow-scale", type=float, default=InputSpec.flow_scale)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--ensemble", type=int, default=2, help="final models (seeds) averaged into one"
    )
    parser.add_argument(
        "--no-mirror",
        dest="mirror",
        action="store_false",
        help="do not also score each window's mirror image",
    )
    parser.add_argument("--cv-only", action="store_true", help="skip the final fit")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    raw_argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(raw_argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    started = time.perf_counter()
    configure_tensorflow(args.seed, args.threads)
    import keras

    spec = InputSpec(
        frames=args.frames,
        height=args.size,
        width=args.size,
        fps=args.fps,
        window_seconds=args.window_seconds,
        diff_scale=args.diff_scale,
        appearance=args.appearance,
        motion=args.motion,
        flow_scale=args.flow_scale,
    )
    config = TrainConfig(
        seed=args.seed,
        folds=args.folds,
        max_epochs=args.max_epochs,
        windows_per_clip=args.windows_per_clip,
        mirror=args.mirror,
        averaged_epochs=args.averaged_epochs,
    )
    model_config = ModelConfig()
    progress = not args.no_progress

    clips: list[Clip] = []
    skipped: list[dict[str, str]] = []
    layouts = []
    for folder in args.data:
        scan = scan_dataset(folder)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # already logged by DatasetScan.skip
            clips.extend(load_clips(scan, spec, args.cache_dir, progress))
        skipped.extend({"path": p, "reason": r} for p, r in scan.skipped)
        layouts.append({"path": str(Path(folder).resolve()), "layout": scan.layout})
    labels = np.array([c.record.label for c in clips])
    print(
        f"{len(clips)} clips ({int(labels.sum())} violent), "
        f"{len({c.record.group for c in clips})} source groups, {len(skipped)} skipped",
        flush=True,
    )
    if len(clips) < 4 or len(np.unique(labels)) < 2:
        print("need at least 4 readable clips of both classes", file=sys.stderr)
        return 2

    cv: dict[str, Any] | None = None
    thresholds: dict[str, Any]
    final_epochs = args.final_epochs
    if config.folds >= 2:
        cv = cross_validate(clips, spec, model_config, config, progress)
        oof_report = classification_report(cv["labels"], cv["oof_scores"], 0.5)
        thresholds = choose_thresholds(cv["labels"], cv["oof_scores"])
        at_high = classification_report(cv["labels"], cv["oof_scores"], thresholds["high"])
        at_decision = classification_report(cv["labels"], cv["oof_scores"], thresholds["decision"])
        summary = cv["mean_sd_at_0.5"]
        print(
            "CV mean+-sd: "
            + ", ".join(f"{k} {v['mean']:.3f}+-{v['sd']:.3f}" for k, v in summary.items())
            + f"; pooled OOF auc {oof_report['roc_auc']:.3f}, "
            f"acc@0.5 {oof_report['accuracy']:.3f}, "
            f"acc@high={thresholds['high']:.3f} {at_high['accuracy']:.3f}, "
            f"acc@decision={thresholds['decision']:.3f} {at_decision['accuracy']:.3f}",
            flush=True,
        )
        if final_epochs is None and config.averaged_epochs:
            final_epochs = config.max_epochs
        if final_epochs is None:
            final_epochs = max(
                config.min_epochs, int(np.median([f["best_epoch"] for f in cv["folds"]]))
            )
    else:
        thresholds = {
            "low": 0.35,
            "high": 0.5,
            "decision": 0.5,
            "method": "fixed defaults: no cross-validation run",
        }
    final_epochs = final_epochs or config.max_epochs
    if args.cv_only:
        if cv is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            folds = [{k: v for k, v in f.items()} for f in cv["folds"]]
            (args.out / "cv.json").write_text(
                json.dumps(
                    {
                        "folds": folds,
                        "thresholds": thresholds,
                        "oof": cv["oof_scores"].tolist(),
                        "labels": cv["labels"].tolist(),
                    },
                    indent=1,
                )
            )
        return 0

    members = []
    final_losses = []
    for member in range(args.ensemble):
        member_model, final_info = fit_model(
            clips,
            None,
            spec,
            model_config,
            config,
            config.seed + 7919 * member,
            epochs=final_epochs,
            label=f"final fit {member + 1}/{args.ensemble}",
            progress=progress,
            name=f"cnn_bilstm_{member}",
        )
        members.append(member_model)
        final_losses.append(final_info["history"][-1]["loss"])
        print(f"final member {member + 1}: loss {final_losses[-1]:.4f}", flush=True)
    model = average_models(spec, members, mirror=config.mirror)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save(args.out / MODEL_FILE)
    train_scores = clip_scores(make_predict_fn(model, spec), clips, spec)
    commit = git_commit()
    data_hash = dataset_hash(clips)
    plots: list[str] = []
    if cv is not None:
        plots = save_plots(
            cv["labels"], cv["oof_scores"], thresholds["decision"], args.out, "out-of-fold CV"
        )
    card: dict[str, Any] = {
        "schema": CARD_SCHEMA,
        "version": f"cnn-bilstm-{data_hash[:8]}-{commit[:7]}-s{config.seed}",
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code_version": {"git_commit": commit},
        "framework": {"tensorflow": _tf_version(), "keras": keras.__version__},
        "model_file": MODEL_FILE,
        "architecture": {
            "summary": "per-frame depthwise-separable CNN (TimeDistributed) -> BiLSTM -> sigmoid"
            + (
                f"; mean of {args.ensemble} such models trained with different seeds"
                if args.ensemble > 1
                else ""
            )
            + ("; each scores the window and its mirror image" if config.mirror else ""),
            "config": model_config.to_dict(),
            "parameters": int(model.count_params()),
        },
        "input_spec": spec.to_dict(),
        "input_representation": (
            f"{spec.frames + 1} frames sampled uniformly from the window, resized to "
            f"{spec.height}x{spec.width} (INTER_AREA); per step {spec.appearance} appearance "
            "and "
            + (
                "Farneback optical flow (dx, dy, magnitude)"
                if spec.motion == "flow"
                else "the signed difference"
            )
            + " to the previous sampled frame (6 channels)"
        ),
        "recommended_fps": spec.fps,
        "window_seconds": spec.window_seconds,
        "clip_score": "mean of window scores, windows of window_seconds every quarter window",
        "thresholds": dict(thresholds),
        "training_data": {
            "folders": layouts,
            "n_clips": len(clips),
            "n_violent": int(labels.sum()),
            "n_groups": len({c.record.group for c in clips}),
            "sha256": data_hash,
            "skipped": skipped,
        },
        "training": {
            "config": config.__dict__,
            "command": "python -m ml.train " + " ".join(shlex.quote(a) for a in raw_argv),
            "final_epochs": final_epochs,
            "final_loss_per_member": final_losses,
            "ensemble_members": args.ensemble,
            "train_accuracy_at_decision": classification_report(
                labels, train_scores, thresholds["decision"]
            )["accuracy"],
            "wall_seconds": round(time.perf_counter() - started, 1),
            "cpu_threads": args.threads or len(os.sched_getaffinity(0)),
        },
        "plots": plots,
    }
    if cv is not None:
        card["cross_validation"] = {
            "scheme": f"StratifiedGroupKFold(n_splits={config.folds}, shuffle, seed={config.seed}) "
            "by source group; "
            + (
                f"each fold trains on all its training groups for {config.max_epochs} epochs and "
                f"keeps the mean weights of the last {config.averaged_epochs}, as the final fit"
                if config.averaged_epochs
                else "early stopping on clip AUC of a group-disjoint validation split carved "
                "from each fold's training groups"
            )
            + ("; test windows scored with their mirror image" if config.mirror else ""),
            "folds": cv["folds"],
            "mean_sd_at_0.5": cv["mean_sd_at_0.5"],
            "pooled_oof_at_0.5": classification_report(cv["labels"], cv["oof_scores"], 0.5),
            "pooled_oof_at_decision": classification_report(
                cv["labels"], cv["oof_scores"], thresholds["decision"]
            ),
            "pooled_oof_at_high": classification_report(
                cv["labels"], cv["oof_scores"], thresholds["high"]
            ),
            "pooled_oof_at_low": classification_report(
                cv["labels"], cv["oof_scores"], thresholds["low"]
            ),
            # Kept so the bands can be audited or re-chosen without training again.
            "out_of_fold": {
                "labels": [int(label) for label in cv["labels"]],
                "scores": [round(float(score), 6) for score in cv["oof_scores"]],
            },
        }
    (args.out / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out / MODEL_FILE} and {CARD_FILE} in {card['training']['wall_seconds']} s")
    return 0


def _tf_version() -> str:
    import tensorflow as tf

    return str(tf.__version__)


if __name__ == "__main__":
    sys.exit(main())
