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
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.augment import spatial_jitter, temporal_crop
from ml.cache import DEFAULT_CACHE_DIR, cached_clip, file_sha256
from ml.datasets import ClipRecord, DatasetScan, scan_dataset
from ml.fusion import DEFAULT_GATE_RECALL
from ml.input_spec import RESIZE_MODES
from ml.metrics import choose_thresholds, classification_report, save_plots
from ml.model_config import ModelConfig
from ml.preprocess import InputSpec, preprocess_window
from ml.runtime import (
    CARD_FILE,
    MODEL_FILE,
    default_model_dir,
    make_predict_fn,
    mean_window_score,
)
from ml.train_cascade import DEFAULT_POSE_FPS, build_cascade
from ml.video import VideoDecodeError

logger = logging.getLogger(__name__)

CARD_SCHEMA = 1
# Seeds of an ensemble's members lie this far apart.
MEMBER_SEED_STEP = 7919


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
    # > 0: mixup, each training window blended with another of its batch by a weight drawn
    # from Beta(mixup, mixup), labels alike. 0: off.
    mixup: float = 0.0
    # Play half the training windows backwards: a blow reversed is still a blow, a calm
    # scene reversed still calm.
    time_reversal: bool = False
    # Share of training windows shown without colour: CCTV ranges from colour to black and
    # white, and a camera's colour cast is a cue to its identity rather than to violence.
    grey_fraction: float = 0.0


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

    BATCHES_PER_CHUNK = 8

    def __init__(self, clips: Sequence[Clip], spec: InputSpec, config: TrainConfig, seed: int):
        self.clips = list(clips)
        self.spec = spec
        self.config = config
        self.seed = seed
        self.samples = len(self.clips) * config.windows_per_clip

    def __len__(self) -> int:
        return math.ceil(self.samples / self.config.batch_size)

    def epoch(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The epoch's batches, preprocessed a few batches at a time to bound memory."""
        rng = np.random.default_rng([self.seed, epoch])
        order = np.tile(np.arange(len(self.clips)), self.config.windows_per_clip)
        rng.shuffle(order)
        chunk = self.config.batch_size * self.BATCHES_PER_CHUNK
        # Their own generators, so mixup and reversal leave the augmentation draws as they were.
        mixing = np.random.default_rng([self.seed, epoch, 1])
        reversing = np.random.default_rng([self.seed, epoch, 2])
        greying = np.random.default_rng([self.seed, epoch, 3])
        with ThreadPoolExecutor(max_workers=_preprocess_threads()) as pool:
            for chunk_start in range(0, len(order), chunk):
                chosen = order[chunk_start : chunk_start + chunk]
                # The random draws stay sequential and in order (reproducible whatever the
                # chunk size); only the preprocessing, which releases the GIL in OpenCV,
                # runs on all cores.
                augmented = [
                    spatial_jitter(temporal_crop(self.clips[index].frames, self.spec, rng), rng)
                    for index in chosen
                ]
                if self.config.time_reversal:
                    augmented = [
                        frames[::-1] if reversing.random() < 0.5 else frames for frames in augmented
                    ]
                if self.config.grey_fraction > 0:
                    augmented = [
                        without_colour(frames)
                        if greying.random() < self.config.grey_fraction
                        else frames
                        for frames in augmented
                    ]
                windows = list(pool.map(lambda f: preprocess_window(f, self.spec), augmented))
                for start in range(0, len(chosen), self.config.batch_size):
                    indices = chosen[start : start + self.config.batch_size]
                    labels = np.array(
                        [self.clips[i].record.label for i in indices], dtype=np.float32
                    )
                    batch = np.stack(windows[start : start + len(indices)])
                    if self.config.mixup > 0:
                        batch, labels = mix_up(batch, labels, self.config.mixup, mixing)
                    yield batch, labels


def without_colour(frames: np.ndarray) -> np.ndarray:
    """The frames in grey, still three channels (luma weights of ITU-R BT.601)."""
    grey = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.repeat(np.rint(grey).astype(np.uint8)[..., None], 3, axis=-1)


def mix_up(
    windows: np.ndarray, labels: np.ndarray, alpha: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Blend each window and label with a random partner of the batch (mixup)."""
    weight = rng.beta(alpha, alpha, size=len(windows)).astype(np.float32)
    partner = rng.permutation(len(windows))
    shape = (-1,) + (1,) * (windows.ndim - 1)
    mixed = windows * weight.reshape(shape) + windows[partner] * (1 - weight).reshape(shape)
    return mixed.astype(np.float32), labels * weight + labels[partner] * (1 - weight)


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
    return np.array([mean_window_score(predict, c.frames, spec) for c in clips], dtype=np.float64)


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
    on_epoch: Callable[[], None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train one model. With ``val``: early stopping on validation clip AUC, best weights kept.

    Without ``val``: exactly ``epochs`` epochs. A hand-written loop rather than ``model.fit``
    keeps clip-level validation (mean over windows) and the seeded batches simple.
    """
    import keras
    import tensorflow as tf
    from sklearn.metrics import roc_auc_score
    from tqdm import tqdm

    from ml.model import build_model

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
        if on_epoch is not None:
            on_epoch()
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
    clips: Sequence[Clip], train: Sequence[int], seed: int, val_fraction: float = 0.2
) -> tuple[list[int], list[int]]:
    """Validation clips carved out of the training groups (never the test fold), by index."""
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.array([clips[i].record.label for i in train])
    groups = np.array([clips[i].record.group for i in train])
    smallest_class = int(np.bincount(labels.astype(int), minlength=2).min())
    splits = min(round(1 / val_fraction), len(np.unique(groups)), smallest_class)
    if splits < 2:
        return list(train), []  # too few clips to hold any out: no early stopping
    splitter = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
    kept, held = next(splitter.split(np.zeros(len(train)), labels, groups))
    return [train[i] for i in kept], [train[i] for i in held]


@dataclass(frozen=True)
class FitJob:
    """One independent fit, a CV fold or a final ensemble member, its clips given by index."""

    label: str
    seed: int
    train: tuple[int, ...]
    val: tuple[int, ...] = ()
    test: tuple[int, ...] = ()
    epochs: int | None = None
    name: str = "cnn_bilstm"
    fold: int = 0  # CV fold, 1-based; 0 for a final member


@dataclass(frozen=True)
class FitContext:
    """What every fit of a run shares; sent once to each worker process."""

    clips: list[Clip]
    spec: InputSpec
    model_config: ModelConfig
    config: TrainConfig


@dataclass
class FitResult:
    weights: list[np.ndarray]
    info: dict[str, Any]
    test_scores: np.ndarray  # clip scores of job.test, mirror-averaged when config.mirror
    seconds: float


def run_fit(
    job: FitJob,
    context: FitContext,
    progress: bool = True,
    on_epoch: Callable[[], None] | None = None,
) -> FitResult:
    """Train one job; with test clips, score them as the shipped model would (mirror included)."""
    from ml.model import average_models

    started = time.perf_counter()
    clips = context.clips
    model, info = fit_model(
        [clips[i] for i in job.train],
        [clips[i] for i in job.val],
        context.spec,
        context.model_config,
        context.config,
        job.seed,
        epochs=job.epochs,
        label=job.label,
        progress=progress,
        name=job.name,
        on_epoch=on_epoch,
    )
    scores = np.zeros(0)
    if job.test:
        scored = average_models(context.spec, [model], mirror=context.config.mirror)
        scores = clip_scores(
            make_predict_fn(scored, context.spec), [clips[i] for i in job.test], context.spec
        )
    return FitResult(model.get_weights(), info, scores, round(time.perf_counter() - started, 1))


_worker_context: FitContext | None = None
_worker_epochs: Any = None


def _start_worker(context: FitContext, epochs_done: Any) -> None:
    global _worker_context, _worker_epochs
    configure_tensorflow(context.config.seed, threads=1)
    _worker_context, _worker_epochs = context, epochs_done


def _fit_in_worker(job: FitJob) -> FitResult:
    assert _worker_context is not None, "_start_worker did not run"
    return run_fit(job, _worker_context, progress=False, on_epoch=lambda: _worker_epochs.put(1))


def run_fits(
    jobs: Sequence[FitJob], context: FitContext, workers: int, progress: bool = True
) -> list[FitResult]:
    """Run independent fits, in this process or in ``workers`` single-threaded processes.

    A model this small leaves TensorFlow's intra-op threads mostly idle, so single-threaded
    fits side by side train faster than one fit on every core (figures in ml/README.md).
    Worker processes are spawned (TensorFlow does not survive fork); each fit is seeded by its
    job, so the results do not depend on which worker runs it or when.
    """
    if workers <= 1 or len(jobs) <= 1:
        return [run_fit(job, context, progress) for job in jobs]
    import multiprocessing

    from tqdm import tqdm

    spawn = multiprocessing.get_context("spawn")
    epochs_done = spawn.Queue()
    workers = min(workers, len(jobs))
    bar = tqdm(
        total=sum(job.epochs or context.config.max_epochs for job in jobs),
        desc=f"{len(jobs)} fits in {workers} processes",
        unit="epoch",
        disable=not progress,
    )

    def follow() -> None:
        while epochs_done.get() is not None:
            bar.update(1)

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    try:
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=spawn,
            initializer=_start_worker,
            initargs=(context, epochs_done),
        ) as pool:
            futures = [pool.submit(_fit_in_worker, job) for job in jobs]
            return [future.result() for future in futures]
    finally:
        epochs_done.put(None)
        follower.join()
        bar.close()


def fold_jobs(clips: Sequence[Clip], config: TrainConfig, members: int = 1) -> list[FitJob]:
    """Grouped, stratified k-fold CV as fits: each trains on k-1 folds and scores the last.

    With ``members`` > 1 every fold trains that many seeds, as the final model does, and its
    clip scores are their mean: the CV measures the ensemble that ships.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.array([c.record.label for c in clips])
    groups = np.array([c.record.group for c in clips])
    splitter = StratifiedGroupKFold(n_splits=config.folds, shuffle=True, random_state=config.seed)
    jobs = []
    for fold, (train_idx, test_idx) in enumerate(
        splitter.split(np.zeros(len(clips)), labels, groups)
    ):
        fold_seed = config.seed * 1000 + fold
        train: list[int] = [int(i) for i in train_idx]
        val: list[int] = []
        if not config.averaged_epochs:
            # Early stopping needs a validation split, carved from the training groups.
            train, val = _inner_split(clips, train, fold_seed)
        # Without early stopping there is no validation split: the fold trains as the final
        # fit does.
        for member in range(members):
            jobs.append(
                FitJob(
                    label=f"fold {fold + 1}/{config.folds}"
                    + (f" member {member + 1}/{members}" if members > 1 else ""),
                    seed=fold_seed + MEMBER_SEED_STEP * member,
                    train=tuple(train),
                    val=tuple(val),
                    test=tuple(int(i) for i in test_idx),
                    fold=fold + 1,
                )
            )
    return jobs


def early_stopped_epochs(folds: Sequence[dict[str, Any]], config: TrainConfig) -> int:
    """Epochs of an early-stopping final fit: the folds' median best epoch, within bounds."""
    median_best = int(np.median([fold["best_epoch"] for fold in folds]))
    return min(config.max_epochs, max(config.min_epochs, median_best))


def summarise_cv(
    clips: Sequence[Clip], jobs: Sequence[FitJob], results: Sequence[FitResult]
) -> dict[str, Any]:
    """Per-fold metrics and the out-of-fold clip scores of finished fold fits."""
    labels = np.array([c.record.label for c in clips])
    groups = np.array([c.record.group for c in clips])
    oof = np.full(len(clips), np.nan)
    by_fold: dict[int, list[tuple[FitJob, FitResult]]] = {}
    for job, result in zip(jobs, results, strict=True):
        by_fold.setdefault(job.fold, []).append((job, result))
    folds = []
    for fold, fits in sorted(by_fold.items()):
        job, first = fits[0]
        test_idx = np.array(job.test)
        scores = np.mean([result.test_scores for _, result in fits], axis=0)
        oof[test_idx] = scores
        report = classification_report(labels[test_idx], scores, 0.5)
        info = first.info
        fold_entry = {
            "fold": fold,
            "members": len(fits),
            "n_train": len(job.train),
            "n_val": len(job.val),
            "n_test": len(job.test),
            "test_groups": sorted({str(g) for g in groups[test_idx]}),
            "best_epoch": info["best_epoch"],
            "best_val_auc": info["best_val_auc"],
            "accuracy": report["accuracy"],
            "roc_auc": report["roc_auc"],
            "f1": report["f1"],
            "seconds": round(sum(result.seconds for _, result in fits), 1),
            # The first member's; the others train the same way with other seeds.
            "history": [
                {k: round(v, 4) if isinstance(v, float) else v for k, v in entry.items()}
                for entry in info["history"]
            ],
        }
        folds.append(fold_entry)
        print(
            f"fold {fold}: acc {report['accuracy']:.3f} auc {report['roc_auc']:.3f} "
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
    parser.add_argument(
        "--widths",
        type=int,
        nargs="+",
        default=list(ModelConfig.widths),
        help="channels of the frame CNN's stem and strided blocks",
    )
    parser.add_argument("--lstm-units", type=int, default=ModelConfig.lstm_units)
    parser.add_argument(
        "--mixup", type=float, default=TrainConfig.mixup, help="Beta(a, a) of mixup; 0: off"
    )
    parser.add_argument(
        "--time-reversal", action="store_true", help="train on half the windows played backwards"
    )
    parser.add_argument(
        "--grey-fraction",
        type=float,
        default=TrainConfig.grey_fraction,
        help="share of training windows shown without colour",
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
    parser.add_argument(
        "--resize",
        choices=RESIZE_MODES,
        default="ffmpeg-area",
        help="how a decoded frame becomes a model-size frame (InputSpec.resize); the camera "
        "reader and every other path follow the card. ffmpeg-area (default): one swscale "
        "call; opencv-area: the models up to cascade-b0664416",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="TensorFlow threads of an in-process fit"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="fits (folds, final members) run side by side, each in a single-threaded "
        "process; 1 fits in this process on --threads (default: one per core)",
    )
    parser.add_argument(
        "--ensemble",
        type=int,
        default=2,
        help="models (seeds) averaged into one, in every CV fold as in the final fit",
    )
    parser.add_argument(
        "--no-mirror",
        dest="mirror",
        action="store_false",
        help="do not also score each window's mirror image",
    )
    parser.add_argument("--cv-only", action="store_true", help="skip the final fit")
    parser.add_argument(
        "--stage1-from",
        type=Path,
        default=None,
        help="build the cascade on this trained stage 1 (artifact folder, or a --cv-only "
        "output folder with --cv-only) and its stored out-of-fold scores; no CNN training",
    )
    parser.add_argument(
        "--no-cascade", action="store_true", help="train and ship stage 1 alone (schema-1 card)"
    )
    parser.add_argument(
        "--pose-fps",
        type=float,
        default=DEFAULT_POSE_FPS,
        help="rate stage 2 decodes its own full-size frames at (the pose stage's chosen 7.5)",
    )
    parser.add_argument(
        "--gate-recall",
        type=float,
        default=DEFAULT_GATE_RECALL,
        help="share of violent out-of-fold clips the stage-2 gate must pass",
    )
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    raw_argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(raw_argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    started = time.perf_counter()
    command = "python -m ml.train " + " ".join(shlex.quote(a) for a in raw_argv)
    if args.stage1_from is not None:
        build_cascade(
            data=args.data,
            stage1_dir=args.stage1_from,
            out=args.out,
            cache_dir=args.cache_dir,
            pose_fps=args.pose_fps,
            gate_recall=args.gate_recall,
            cv_only=args.cv_only,
            progress=not args.no_progress,
            command=command,
            cascade_commit=git_commit(),
            started=started,
        )
        return 0
    configure_tensorflow(args.seed, args.threads)
    import keras

    from ml.model import average_models, build_model

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
        resize=args.resize,
    )
    config = TrainConfig(
        seed=args.seed,
        folds=args.folds,
        max_epochs=args.max_epochs,
        windows_per_clip=args.windows_per_clip,
        mirror=args.mirror,
        averaged_epochs=args.averaged_epochs,
        mixup=args.mixup,
        time_reversal=args.time_reversal,
        grey_fraction=args.grey_fraction,
    )
    model_config = ModelConfig(widths=tuple(args.widths), lstm_units=args.lstm_units)
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

    context = FitContext(clips, spec, model_config, config)

    def member_jobs(epochs: int) -> list[FitJob]:
        return [
            FitJob(
                label=f"final fit {member + 1}/{args.ensemble}",
                seed=config.seed + MEMBER_SEED_STEP * member,
                train=tuple(range(len(clips))),
                epochs=epochs,
                name=f"cnn_bilstm_{member}",
            )
            for member in range(args.ensemble)
        ]

    cv: dict[str, Any] | None = None
    thresholds: dict[str, Any]
    final_epochs = args.final_epochs
    if final_epochs is None and (config.averaged_epochs or config.folds < 2):
        final_epochs = config.max_epochs
    cv_jobs = fold_jobs(clips, config, args.ensemble) if config.folds >= 2 else []
    # The final members do not depend on the CV when their epoch count is known up front, so
    # they share the worker processes with the folds.
    final_jobs = member_jobs(final_epochs) if final_epochs and not args.cv_only else []
    results = run_fits(cv_jobs + final_jobs, context, args.jobs, progress)
    final_results = results[len(cv_jobs) :]
    if cv_jobs:
        cv = summarise_cv(clips, cv_jobs, results[: len(cv_jobs)])
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
        if final_epochs is None:
            # Early stopping: the final fit trains for the folds' median best epoch.
            final_epochs = early_stopped_epochs(cv["folds"], config)
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
            if not args.no_cascade:
                build_cascade(
                    data=args.data,
                    stage1_dir=args.out,
                    out=args.out,
                    cache_dir=args.cache_dir,
                    pose_fps=args.pose_fps,
                    gate_recall=args.gate_recall,
                    cv_only=True,
                    progress=progress,
                    command=command,
                    started=started,
                )
        return 0

    if not final_jobs:
        final_jobs = member_jobs(final_epochs)
        final_results = run_fits(final_jobs, context, args.jobs, progress)
    members = []
    final_losses = []
    for job, result in zip(final_jobs, final_results, strict=True):
        member_model = build_model(spec, model_config, name=job.name)
        member_model.set_weights(result.weights)
        members.append(member_model)
        final_losses.append(result.info["history"][-1]["loss"])
        print(f"{job.label}: loss {final_losses[-1]:.4f} ({result.seconds} s)", flush=True)
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
            "command": command,
            "final_epochs": final_epochs,
            "final_loss_per_member": final_losses,
            "ensemble_members": args.ensemble,
            "train_accuracy_at_decision": classification_report(
                labels, train_scores, thresholds["decision"]
            )["accuracy"],
            "wall_seconds": round(time.perf_counter() - started, 1),
            "cpu_threads": args.threads or len(os.sched_getaffinity(0)),
            "parallel_fits": args.jobs,
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
            + (
                f"; every fold trains {args.ensemble} seeds and scores their mean, as shipped"
                if args.ensemble > 1
                else ""
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
    if cv is not None and not args.no_cascade:
        # Stage 1 is in place with its out-of-fold scores: the cascade is built on top of it.
        build_cascade(
            data=args.data,
            stage1_dir=args.out,
            out=args.out,
            cache_dir=args.cache_dir,
            pose_fps=args.pose_fps,
            gate_recall=args.gate_recall,
            progress=progress,
            command=command,
            cascade_commit=git_commit(),
            started=started,
        )
    return 0


def _tf_version() -> str:
    import tensorflow as tf

    return str(tf.__version__)


if __name__ == "__main__":
    sys.exit(main())
