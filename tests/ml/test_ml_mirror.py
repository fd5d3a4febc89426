"""The mirror test-time augmentation: exact, saved in the model file, and loadable."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ml.model import ModelConfig, average_models, build_model
from ml.preprocess import InputSpec, preprocess_window
from ml.runtime import ViolenceDetector
from ml.video import decode_frames

SPEC = InputSpec(frames=4, height=32, width=32)
TINY = ModelConfig(widths=(4, 8), lstm_units=4)


def test_mirroring_the_input_equals_preprocessing_mirrored_frames(fight_clip):
    frames = decode_frames(fight_clip, fps=SPEC.fps)[: SPEC.window_frames]
    mirrored_frames = [np.ascontiguousarray(frame[:, ::-1]) for frame in frames]
    difference = np.abs(
        preprocess_window(mirrored_frames, SPEC) - preprocess_window(frames, SPEC)[:, :, ::-1]
    )
    # Equal up to the rounding of the resized uint8 frames: a grey level on a few pixels.
    assert difference.max() <= 2 * SPEC.diff_scale / 255 + 1e-6
    assert difference.mean() < 1e-3


def test_mirror_ensemble_scores_the_mean_of_both_views_and_survives_saving(tmp_path):
    import keras

    keras.utils.set_random_seed(3)
    members = [build_model(SPEC, TINY, name=f"m{i}") for i in range(2)]
    windows = np.random.default_rng(0).normal(size=(5, *SPEC.shape)).astype(np.float32)
    mirrored = windows[:, :, :, ::-1]
    expected = np.mean(
        [m(v, training=False).numpy().reshape(-1) for m in members for v in (windows, mirrored)],
        axis=0,
    )
    model = average_models(SPEC, members, mirror=True)
    np.testing.assert_allclose(
        model(windows, training=False).numpy().reshape(-1), expected, atol=1e-5
    )
    # A window and its mirror image get the same score.
    np.testing.assert_allclose(
        model(mirrored, training=False).numpy().reshape(-1), expected, atol=1e-5
    )

    model.save(tmp_path / "model.keras")
    card = {
        "version": "mirror-test",
        "input_spec": SPEC.to_dict(),
        "thresholds": {"low": 0.3, "high": 0.7, "decision": 0.5},
    }
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    detector = ViolenceDetector.load(tmp_path)
    np.testing.assert_allclose(detector.predict(windows), expected, atol=1e-5)
    assert detector.thresholds.verdict_cut == pytest.approx(0.5)
