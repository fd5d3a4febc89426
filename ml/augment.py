"""Training-time augmentation of decoded, model-sized frames (before preprocessing)."""

from __future__ import annotations

import cv2
import numpy as np

from ml.preprocess import InputSpec


def temporal_crop(frames: np.ndarray, spec: InputSpec, rng: np.random.Generator) -> np.ndarray:
    """A random window, its length jittered so motion speed varies by up to +-25 %."""
    length = max(2, round(spec.window_frames * rng.uniform(0.8, 1.25)))
    if len(frames) <= length:
        return frames
    start = int(rng.integers(0, len(frames) - length + 1))
    return frames[start : start + length]


def spatial_jitter(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Same random flip, crop-and-rescale, brightness and contrast for every frame of a window."""
    height, width = frames.shape[1:3]
    scale = rng.uniform(0.75, 1.0)
    crop_h = max(8, round(height * scale * rng.uniform(0.9, 1.1)))
    crop_w = max(8, round(width * scale * rng.uniform(0.9, 1.1)))
    crop_h, crop_w = min(crop_h, height), min(crop_w, width)
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    flip = bool(rng.random() < 0.5)
    contrast = rng.uniform(0.7, 1.3)
    brightness = rng.uniform(-0.15, 0.15) * 255.0
    out = np.empty_like(frames)
    for index, frame in enumerate(frames):
        patch = frame[top : top + crop_h, left : left + crop_w]
        if flip:
            patch = patch[:, ::-1]
        out[index] = cv2.resize(
            np.ascontiguousarray(patch), (width, height), interpolation=cv2.INTER_LINEAR
        )
    mean = out.mean()
    adjusted = (out.astype(np.float32) - mean) * contrast + mean + brightness
    jittered: np.ndarray = np.clip(adjusted, 0, 255).astype(np.uint8)
    return jittered
