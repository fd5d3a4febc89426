"""Runtime API for the workers: load a model version once, score batches of windows.

``CascadeDetector`` serves any model version (a schema-1 CNN or the CNN + pose cascade);
``ViolenceDetector`` is stage 1 alone (and what schema-1 versions were always served by).
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ml.model_card import CARD_FILE, ModelCard, ModelCardError, Thresholds
from ml.preprocess import InputSpec, clip_window_batches, preprocess_window, window_starts

__all__ = [
    "CARD_FILE",
    "STAGE2_MIN_LONG_SIDE",
    "CascadeDetector",
    "InputSpec",
    "ModelCardError",
    "ModelFilesError",
    "Thresholds",
    "ViolenceDetector",
    "WindowScore",
    "check_model_files",
    "default_model_dir",
]

MODEL_FILE = "model.keras"


def default_model_dir() -> Path:
    """The shipped default model version."""
    return Path(__file__).resolve().parent / "artifacts" / "default"


def limit_tensorflow_threads(threads: int) -> bool:
    """Run each TensorFlow op on at most ``threads`` cores (0: TensorFlow's choice, no limit).

    Must run before TensorFlow starts its runtime (before the first model is loaded): False,
    with nothing changed, when it is too late.
    """
    if threads <= 0:
        return True
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        return bool(tf.config.threading.get_intra_op_parallelism_threads() == threads)
    return True


# TensorFlow's kernels assume tensors aligned to EIGEN_MAX_ALIGN_BYTES (64 with AVX-512); a
# tensor over unaligned memory aborts the process in a kernel's check, it does not raise.
TENSOR_ALIGNMENT = 64


def aligned_empty(shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a TENSOR_ALIGNMENT boundary."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + TENSOR_ALIGNMENT, dtype=np.uint8)
    offset = (-raw.ctypes.data) % TENSOR_ALIGNMENT
    aligned: np.ndarray = raw[offset : offset + nbytes].view(dtype).reshape(shape)
    return aligned


def is_tensor_shareable(array: np.ndarray) -> bool:
    """Whether TensorFlow may borrow this array's memory: contiguous, aligned and writable
    (numpy exports no read-only array through DLPack)."""
    return (
        bool(array.flags.c_contiguous)
        and bool(array.flags.writeable)
        and array.ctypes.data % TENSOR_ALIGNMENT == 0
    )


def as_tensor_input(batch: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """``batch`` as a float32 array TensorFlow may borrow: itself when it already is one."""
    array = np.asarray(batch, dtype=np.float32)
    if is_tensor_shareable(array):
        return array
    aligned = aligned_empty(array.shape)
    aligned[...] = array
    return aligned


def make_predict_fn(model: Any, spec: InputSpec) -> Callable[[np.ndarray], np.ndarray]:
    """A compiled inference function with a fixed input signature (no retracing per batch size).

    ``model.predict`` costs milliseconds of per-call overhead; a traced call does not.

    The batch reaches TensorFlow through DLPack, sharing the array's memory.
    ``tf.convert_to_tensor`` copies it into freshly mapped memory instead. For a 32-window
    batch (38 MB) that copy took 7-50 ms, as long as the model itself, and under load it was
    16 % of the inference worker's time (py-spy, 64 cameras). The array is made aligned first
    (`as_tensor_input`), since the shared memory must satisfy TensorFlow's alignment.
    """
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, *spec.shape), tf.float32)])  # type: ignore[untyped-decorator]
    def forward(batch: Any) -> Any:
        return tf.reshape(model(batch, training=False), [-1])

    def predict(batch: np.ndarray) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros((0,), dtype=np.float32)
        array = as_tensor_input(batch)
        # `array` stays referenced until the call returns: the tensor borrows its memory.
        tensor = tf.experimental.dlpack.from_dlpack(array.__dlpack__())
        scores = forward(tensor).numpy()
        return np.asarray(scores, dtype=np.float32)

    return predict


def mean_window_score(
    predict: Callable[[np.ndarray], np.ndarray],
    clip_frames: Sequence[np.ndarray] | np.ndarray,
    spec: InputSpec,
    batch_size: int = 128,
) -> float:
    """A clip's score: the mean of ``predict`` over its overlapping windows (``clip_windows``).

    The windows are preprocessed and scored a batch at a time, so a long clip costs the
    memory of one batch, not of all its windows.
    """
    total, count = 0.0, 0
    for batch in clip_window_batches(clip_frames, spec, batch_size=batch_size):
        total += float(np.sum(predict(batch), dtype=np.float64))
        count += len(batch)
    return total / count


class ViolenceDetector:
    """One loaded model version. Safe to share between threads."""

    def __init__(
        self,
        model: Any,
        card: dict[str, Any],
        *,
        max_batch: int = 64,
    ) -> None:
        self.card: dict[str, Any] = card
        self.model_card: ModelCard = ModelCard.from_dict(card)
        self.version: str = self.model_card.version
        self.spec: InputSpec = self.model_card.input_spec
        # A cascade card's bands apply to fused scores; scored alone, stage 1 keeps its own.
        self.thresholds: Thresholds = stage1_thresholds(self.model_card)
        self._model = model
        self._forward = make_predict_fn(model, self.spec)
        self._max_batch = max_batch
        # Serialises calls into TensorFlow: the graph already uses every core, so concurrent
        # calls gain nothing and would only contend for them.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, artifact_dir: str | os.PathLike[str]) -> ViolenceDetector:
        """Read ``model.keras`` and ``model_card.json`` from an artifact folder."""
        folder = Path(artifact_dir)
        card = ModelCard.load(folder)
        model_path = folder / card.model_file
        if not model_path.is_file():
            raise FileNotFoundError(f"{folder} lacks {card.model_file}")
        import keras

        import ml.model  # noqa: F401  (registers the custom layers a saved model may hold)

        model = keras.saving.load_model(model_path, compile=False)
        return cls(model, card.to_dict())

    def preprocess(self, frames: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Decoded RGB uint8 frames of one window (any size, >= 2) -> one model input."""
        return preprocess_window(frames, self.spec)

    def predict(self, windows: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Preprocessed windows (N, *spec.shape) -> float32 scores in [0, 1], shape (N,)."""
        if len(windows) == 0:
            return np.zeros((0,), dtype=np.float32)
        # Aligned once here. When a window fills whole 64-byte blocks (the shipped model's
        # do), every slice below starts aligned too and is shared; another slice is copied.
        batch = as_tensor_input(windows)
        if batch.shape[1:] != self.spec.shape:
            raise ValueError(
                f"expected windows of shape (N, {', '.join(map(str, self.spec.shape))}), "
                f"got {batch.shape}"
            )
        parts = []
        with self._lock:
            for start in range(0, len(batch), self._max_batch):
                parts.append(self._forward(batch[start : start + self._max_batch]))
        scores: np.ndarray = np.clip(np.concatenate(parts), 0.0, 1.0).astype(np.float32)
        return scores

    def warm_up(self) -> None:
        """Trace the compiled forward pass now rather than in the first real batch, which then
        took about 3 s instead of 0.4 s on a 2-core box (bench_pipeline, 32 cameras)."""
        self.predict(np.zeros((1, *self.spec.shape), dtype=np.float32))

    def score_frames(self, frames: Sequence[np.ndarray]) -> float:
        """Preprocess and score one window."""
        return float(self.predict(self.preprocess(frames)[np.newaxis])[0])

    def score_clip(self, clip_frames: Sequence[np.ndarray] | np.ndarray) -> float:
        """Score a whole clip decoded at ``spec.fps``: the mean over its overlapping windows."""
        return mean_window_score(self.predict, clip_frames, self.spec, self._max_batch)


def stage1_thresholds(card: ModelCard) -> Thresholds:
    """The bands of stage 1 scored alone: the card's own for a schema-1 card; for a cascade,
    those chosen on stage 1's out-of-fold scores and kept with the stage."""
    if not card.is_cascade:
        return card.thresholds
    own = card.stages[0].details.get("thresholds")
    if not isinstance(own, dict):
        raise ModelCardError(f"card {card.version}: stage 1 lacks its own thresholds")
    return Thresholds.from_dict(own)


# ---------------------------------------------------------------------------------------------
# The cascade


class ModelFilesError(RuntimeError):
    """A model version's file is missing or not the one its card names; the message names it.

    A worker that gets this must refuse to start (and ``/healthz`` say so): scoring with another
    file than the one the bands were chosen for gives numbers that mean nothing.
    """


@dataclass(frozen=True)
class WindowScore:
    """One window through the cascade. ``stage2`` is None when the gate stopped the window
    (or the model has no stage 2); ``fused`` is the score the bands apply to."""

    stage1: float
    stage2: float | None
    fused: float
    band: str


# A window: decoded RGB uint8 frames (H x W x 3), a list of them or one (T, H, W, 3) array.
Window = Sequence[np.ndarray] | np.ndarray


class Stage1(Protocol):
    """What the cascade needs of stage 1 (``ViolenceDetector``)."""

    def preprocess(self, frames: Sequence[np.ndarray] | np.ndarray) -> np.ndarray: ...

    def predict(self, windows: np.ndarray | Sequence[np.ndarray]) -> np.ndarray: ...


class Stage2(Protocol):
    """What the cascade needs of stage 2: scores in [0, 1] for clips of frames at ``fps``."""

    # The rate stage 2's frames must be decoded at (its own, not stage 1's analysis rate).
    fps: float

    def score(self, windows: Sequence[Window]) -> np.ndarray: ...

    def score_file(self, path: str | os.PathLike[str]) -> float: ...


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_model_files(artifact_dir: str | os.PathLike[str]) -> ModelCard:
    """Raise ModelFilesError naming the file unless the card and every file it names are there
    and unaltered (sha256 as the card records; the pose model against the card and its
    provenance). Cheap enough for a health check: hashing is a few ms per MB."""
    folder = Path(artifact_dir)
    try:
        card = ModelCard.load(folder)
    except ModelCardError as error:
        raise ModelFilesError(str(error)) from error
    for stage in card.stages:
        path = folder / stage.file
        if not path.is_file():
            raise ModelFilesError(f"{path}: missing (stage {stage.name!r} of {card.version})")
        if stage.sha256 is not None and _sha256(path) != stage.sha256:
            raise ModelFilesError(
                f"{path}: altered, its sha256 is not the {stage.sha256} that "
                f"{folder / CARD_FILE} names"
            )
        pose_model = stage.details.get("pose_model")
        if isinstance(pose_model, dict):
            pose_model_path(folder, pose_model)  # raises on a missing or altered model
    return card


def pose_model_path(folder: Path, pose_model: dict[str, Any]) -> Path:
    """The pose model a card names: a copy inside the artifact folder, else the one the package
    ships (``ml/artifacts/pose``); either must have the card's sha256."""
    name = str(pose_model.get("file", ""))
    expected = pose_model.get("sha256")
    candidates = [folder / name, Path(__file__).resolve().parent / "artifacts" / "pose" / name]
    path = next((c for c in candidates if name and c.is_file()), None)
    if path is None:
        raise ModelFilesError(
            f"pose model {name or '(unnamed)'} is missing: looked for {candidates[0]} and "
            f"{candidates[1]}"
        )
    found = _sha256(path)
    if expected is not None and found != expected:
        raise ModelFilesError(
            f"pose model {path} is altered: sha256 {found} is not the {expected} that "
            f"{folder / CARD_FILE} names"
        )
    return path


class CascadeDetector:
    """One loaded model version, schema 1 or cascade: the one object the inference worker needs.

    A window is a sequence of decoded RGB uint8 frames (H x W x 3) at ``spec.fps`` covering
    ``spec.window_seconds`` (``spec.window_frames`` frames; as ``ml.frames`` samples them).
    Stage 1 resizes them itself (any size works; the live reader may hand 64x64 copies).
    Stage 2 (pose) reads its OWN frames: full-size RGB frames of the same span decoded at
    ``stage2_fps`` (the card's; ``ml.video.decode_frames(path, fps=detector.stage2_fps)``), at
    least ``STAGE2_MIN_LONG_SIDE`` pixels on the long side. Pass them as ``pose_windows`` /
    ``pose_clips``; without them stage 2 gets the stage-1 frames resampled to its rate by
    index (``cascade_pose.resample_indices``), which is close to, not the same as, decoding.

    Whole pipeline: ``score_windows``. Split (stage 2 on another worker or host):
    ``score_stage1`` -> ``gate_passes`` -> (elsewhere) ``score_stage2`` on the passing windows ->
    ``fuse``. Thread-safe; stage 1 serialises calls into TensorFlow.
    """

    def __init__(
        self,
        card: ModelCard,
        stage1: Stage1,
        stage2: Stage2 | None,
    ) -> None:
        self.card = card
        self.version = card.version
        self.spec: InputSpec = card.input_spec
        self.thresholds: Thresholds = card.thresholds
        self.stage1 = stage1
        self.stage2 = stage2
        self._buffers = threading.local()

    def _batch_buffer(self, windows: int) -> np.ndarray:
        """An aligned array for ``windows`` model inputs, TensorFlow can borrow it as is.

        A live batch (up to INFERENCE_BATCH_MAX, 32: 38 MB) reuses its thread's array. A fresh
        one would be mapped anew for every batch, which is a page fault per 4 kB, since
        allocations this large bypass the kept heap. Larger batches (a long file in
        ``ml.evaluate``) get an array of their own, so that one long clip does not hold
        hundreds of MB afterwards.
        """
        shape = (windows, *self.spec.shape)
        if windows > REUSED_BATCH_WINDOWS:
            return aligned_empty(shape)
        kept: np.ndarray | None = getattr(self._buffers, "array", None)
        if kept is None or len(kept) < windows:
            kept = aligned_empty(shape)  # grows to the largest batch the thread has seen
            self._buffers.array = kept
        return kept[:windows]

    @property
    def stage2_fps(self) -> float | None:
        """The rate stage 2's frames must be decoded at (the card's), None without stage 2."""
        if not self.card.is_cascade or len(self.card.stages) < 2:
            return None
        return float(self.card.stages[1].details.get("fps", self.spec.fps))

    def _stage2_frames(self, frames: Window) -> Window:
        """Stage-1 frames at ``spec.fps`` resampled by index to ``stage2_fps`` (the fallback
        when no ``pose_*`` frames were given)."""
        from ml.cascade_pose import resample_indices

        fps = self.stage2_fps
        if fps is None or abs(fps - self.spec.fps) < 1e-9:
            return frames
        return [frames[i] for i in resample_indices(len(frames), self.spec.fps, fps)]

    @classmethod
    def load(
        cls,
        artifact_dir: str | os.PathLike[str],
        *,
        with_stage2: bool = True,
        pose_threads: int = 1,
    ) -> CascadeDetector:
        """Check every file (ModelFilesError names a missing or altered one), then load.

        ``with_stage2=False`` loads stage 1 only, for a worker that sends gated windows to a
        separate stage-2 worker (which loads the full cascade).
        """
        folder = Path(artifact_dir)
        card = check_model_files(folder)
        stage1 = ViolenceDetector.load(folder)
        stage2 = None
        if card.is_cascade and with_stage2:
            stage2 = load_pose_stage(folder, card, threads=pose_threads)
        return cls(card, stage1, stage2)

    @staticmethod
    def check(artifact_dir: str | os.PathLike[str]) -> None:
        """Raise ModelFilesError unless every file of the version is there and unaltered."""
        check_model_files(artifact_dir)

    # ---- the steps ------------------------------------------------------------------------

    def score_stage1(self, windows: Sequence[Window]) -> np.ndarray:
        """Stage-1 scores (N,) of windows of frames."""
        if len(windows) == 0:
            return np.zeros((0,), dtype=np.float32)
        return self.stage1.predict(np.stack([self.stage1.preprocess(w) for w in windows]))

    def gate_passes(self, stage1_scores: Sequence[float] | np.ndarray) -> np.ndarray:
        """Which windows stage 2 must score (all False without a stage 2 in the card)."""
        scores = np.asarray(stage1_scores, dtype=np.float64)
        if self.card.gate is None:
            return np.zeros(scores.shape, dtype=bool)
        return scores >= self.card.gate.cut

    def score_stage2(self, windows: Sequence[Window]) -> np.ndarray:
        """Stage-2 scores (N,) of windows or clips that passed the gate: full-size RGB frames
        decoded at ``stage2_fps`` (NaN for one it cannot read)."""
        if self.stage2 is None:
            raise RuntimeError(
                f"{self.version}: stage 2 is not loaded here"
                + ("" if self.card.is_cascade else " (the card has none)")
            )
        if len(windows) == 0:
            return np.zeros((0,), dtype=np.float32)
        return np.asarray(self.stage2.score(windows), dtype=np.float32)

    def score_stage2_file(self, path: str | os.PathLike[str]) -> float:
        """Stage-2 score of a whole clip file (``ml.evaluate``), its frames streamed."""
        if self.stage2 is None:
            raise RuntimeError(f"{self.version}: stage 2 is not loaded here")
        return float(self.stage2.score_file(path))

    def fuse(self, stage1: float, stage2: float | None) -> WindowScore:
        """The fused score and band of one window (``stage2`` None: the gate stopped it; NaN:
        stage 2 could not read the window, which then counts as stopped)."""
        if stage2 is not None and not math.isfinite(stage2):
            stage2 = None
        if self.card.fusion is None:
            fused = float(stage1)
        else:
            fused = self.card.fusion.score(float(stage1), stage2)
        return WindowScore(
            float(stage1),
            None if stage2 is None else float(stage2),
            fused,
            self.thresholds.band(fused),
        )

    # ---- all at once ----------------------------------------------------------------------

    def score_windows(
        self,
        windows: Sequence[Window],
        pose_windows: Sequence[Window] | None = None,
    ) -> list[WindowScore]:
        """Score windows through the whole cascade (stage 2 only where the gate passes).
        ``pose_windows``: the same spans as full-size frames at ``stage2_fps``."""
        if pose_windows is not None and len(pose_windows) != len(windows):
            raise ValueError(f"{len(pose_windows)} pose windows for {len(windows)} windows")
        stage1 = self.score_stage1(windows)
        stage2: list[float | None] = [None] * len(windows)
        passing = np.flatnonzero(self.gate_passes(stage1))
        if len(passing):
            scored = self.score_stage2(
                [
                    pose_windows[int(i)]
                    if pose_windows is not None
                    else self._stage2_frames(windows[int(i)])
                    for i in passing
                ]
            )
            for index, score in zip(passing, scored, strict=True):
                stage2[int(index)] = float(score)
        return [self.fuse(float(s1), s2) for s1, s2 in zip(stage1, stage2, strict=True)]

    def score_clips(
        self,
        clips: Sequence[Window],
        pose_clips: Sequence[Window] | None = None,
    ) -> list[WindowScore]:
        """Score segments of any length (a live segment, an uploaded clip, a dataset clip)
        exactly as ``ml.evaluate`` and training score a clip: stage 1 is the mean over the
        clip's overlapping windows of ``spec.window_seconds`` (``preprocess.window_starts``),
        the gate reads that, stage 2 reads the whole clip (the mean over its pose windows), the
        card's fusion gives the final score. Stage 1 runs as one batch over every clip's
        windows; stage 2 only on the clips that pass. This is the call that makes a live
        segment score what ``ml.evaluate`` gives the same frames as a file.

        ``clips``: frames at ``spec.fps`` (any size). ``pose_clips``: the same segments as
        full-size RGB frames decoded at ``stage2_fps`` (the live worker:
        ``ml.video.decode_frames(stored_original, fps=detector.stage2_fps)``); only those of
        clips that pass the gate are read, so a caller may decode lazily after
        ``score_stage1_clips`` + ``gate_passes``."""
        if pose_clips is not None and len(pose_clips) != len(clips):
            raise ValueError(f"{len(pose_clips)} pose clips for {len(clips)} clips")
        stage1 = self.score_stage1_clips(clips)
        stage2: list[float | None] = [None] * len(clips)
        passing = np.flatnonzero(self.gate_passes(stage1))
        if len(passing):
            scored = self.score_stage2(
                [
                    pose_clips[int(i)]
                    if pose_clips is not None
                    else self._stage2_frames(clips[int(i)])
                    for i in passing
                ]
            )
            for position, score in zip(passing, scored, strict=True):
                stage2[int(position)] = float(score)
        return [self.fuse(float(s1), s2) for s1, s2 in zip(stage1, stage2, strict=True)]

    def score_stage1_clips(self, clips: Sequence[Window]) -> np.ndarray:
        """Stage-1 clip scores (N,): each the mean over the clip's windows of
        ``spec.window_seconds`` every quarter window, all clips' windows in one batch. The split
        path's first step for segments (then ``gate_passes``, ``score_stage2``, ``fuse``)."""
        length = self.spec.window_frames
        owners: list[int] = []
        starts: list[int] = []
        for index, frames in enumerate(clips):
            if len(frames) < 2:
                raise ValueError(f"clip {index} holds {len(frames)} frame(s); at least 2 needed")
            for start in window_starts(len(frames), self.spec):
                owners.append(index)
                starts.append(start)
        stage1 = np.zeros(len(clips), dtype=np.float64)
        if owners:
            # Written in place: a model input is 1.2 MB, and stacking a batch of them afterwards
            # would copy them all once more.
            inputs = self._batch_buffer(len(owners))
            for row, (index, start) in enumerate(zip(owners, starts, strict=True)):
                inputs[row] = self.stage1.preprocess(clips[index][start : start + length])
            scores = self.stage1.predict(inputs).astype(np.float64)
            np.add.at(stage1, np.asarray(owners), scores)
            stage1 /= np.bincount(np.asarray(owners), minlength=len(clips))
        return stage1

    def score_clip(self, frames: Window, pose_frames: Window | None = None) -> WindowScore:
        """``score_clips`` of one clip."""
        return self.score_clips([frames], None if pose_frames is None else [pose_frames])[0]


# The largest stage-1 batch whose input array a thread keeps for the next batch (the live
# worker's INFERENCE_BATCH_MAX is 32).
REUSED_BATCH_WINDOWS = 64

# Pose finds people in a 256 x 256 letterbox: frames smaller than that lose people.
STAGE2_MIN_LONG_SIDE = 256


def load_pose_stage(folder: Path, card: ModelCard, *, threads: int = 1) -> Stage2:
    """Stage 2 of a cascade card: the pose estimator and the fitted pose classifier."""
    from ml.cascade_pose import PoseWindowScorer

    stage = card.stages[1]
    pose_model = stage.details.get("pose_model")
    if not isinstance(pose_model, dict):
        raise ModelFilesError(f"{folder / CARD_FILE}: stage {stage.name!r} names no pose model")
    return PoseWindowScorer.load(
        folder / stage.file,
        pose_model_path(folder, pose_model),
        stage=stage,
        threads=threads,
    )
