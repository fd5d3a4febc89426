"""Decoded clips cached on disk at model size, so cross-validation folds never re-decode."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from ml.preprocess import InputSpec
from ml.video import decode_frames

DEFAULT_CACHE_DIR = Path(__file__).resolve().parent.parent / ".ml-cache"


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def decode_clip(path: str | os.PathLike[str], spec: InputSpec) -> np.ndarray:
    """Decode a clip at ``spec.fps`` with its frames at model size: uint8 (N, H, W, 3).

    Each frame is made by ``ml.video.model_frame``, the rule the camera reader and every other
    path use, so training windows cut from this array are the windows the live system sees.
    Frames are shrunk as they are decoded: memory follows the model size, not the file's.
    """
    return np.stack(decode_frames(path, fps=spec.fps, spec=spec))


def cached_clip(
    path: str | os.PathLike[str], spec: InputSpec, cache_dir: Path | None = None
) -> np.ndarray:
    """``decode_clip`` through an on-disk cache keyed by file content and spec."""
    folder = (cache_dir or DEFAULT_CACHE_DIR) / "clips"
    # Frames shrunk by another rule are other pixels: the rule is part of the key (the old
    # keys, without it, were OpenCV's).
    rule = "" if spec.resize == "opencv-area" else f"-{spec.resize}"
    key = f"{file_sha256(path)}-{spec.fps:g}fps-{spec.height}x{spec.width}{rule}"
    target = folder / f"{key}.npy"
    if target.is_file():
        try:
            cached: np.ndarray = np.load(target, allow_pickle=False)
            return cached
        except (OSError, ValueError):
            target.unlink(missing_ok=True)
    frames = decode_clip(path, spec)
    folder.mkdir(parents=True, exist_ok=True)
    # Written to a temporary name first so a parallel run never reads half a file.
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".npy", delete=False) as handle:
        np.save(handle, frames, allow_pickle=False)
    os.replace(handle.name, target)
    return frames
