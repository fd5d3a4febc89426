"""Runtime API for the workers: load a model version once, score batches of windows."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ml.model_card import CARD_FILE, ModelCard, ModelCardError, Thresholds
from ml.preprocess import InputSpec, clip_window_batches, preprocess_window

__all__ = [
    "CARD_FILE",
    "InputSpec",
    "ModelCardError",
    "Thresholds",
    "ViolenceDetector",
    "default_model_dir",
]

MODEL_FILE = "model.keras"


def default_model_dir() -> Path:
    """The shipped default model version."""
    return Path(__file__).resolve().parent / "artifacts" / "default"


def make_predict_fn(model: Any, spec: InputSpec) -> Callable[[np.ndarray], np.ndarray]:
    """A compiled inference function with a fixed input signature (no retracing per batch size).

    ``model.predict`` costs milliseconds of per-call overhead; a traced call does not.
    """
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, *spec.shape), tf.float32)])  # type: ignore[untyped-decorator]
    def forward(batch: Any) -> Any:
        return tf.reshape(model(batch, training=False), [-1])

    def predict(batch: np.ndarray) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros((0,), dtype=np.float32)
        scores = forward(tf.convert_to_tensor(batch, dtype=tf.float32)).numpy()
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
        self.thresholds: Thresholds = self.model_card.thresholds
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

    def preprocess(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """Decoded RGB uint8 frames of one window (any size, >= 2) -> one model input."""
        return preprocess_window(frames, self.spec)

    def predict(self, windows: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Preprocessed windows (N, *spec.shape) -> float32 scores in [0, 1], shape (N,)."""
        if len(windows) == 0:
            return np.zeros((0,), dtype=np.float32)
        batch = np.asarray(windows, dtype=np.float32)
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

    def score_frames(self, frames: Sequence[np.ndarray]) -> float:
        """Preprocess and score one window."""
        return float(self.predict(self.preprocess(frames)[np.newaxis])[0])

    def score_clip(self, clip_frames: Sequence[np.ndarray] | np.ndarray) -> float:
        """Score a whole clip decoded at ``spec.fps``: the mean over its overlapping windows."""
        return mean_window_score(self.predict, clip_frames, self.spec, self._max_batch)
