from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from ml.cache import decode_clip
from ml.preprocess import clip_windows
from ml.runtime import (
    TENSOR_ALIGNMENT,
    CascadeDetector,
    InputSpec,
    Thresholds,
    ViolenceDetector,
    aligned_empty,
    as_tensor_input,
    default_model_dir,
    is_tensor_shareable,
    mean_window_score,
)
from ml.video import decode_frames


@pytest.fixture(scope="module")
def detector() -> ViolenceDetector:
    return ViolenceDetector.load(default_model_dir())


def test_shipped_model_card_matches_the_loaded_detector(detector):
    card = json.loads((default_model_dir() / "model_card.json").read_text())
    assert detector.version == card["version"]
    assert detector.spec == InputSpec.from_dict(card["input_spec"])
    assert isinstance(detector.thresholds, Thresholds)
    assert 0.0 <= detector.thresholds.low <= detector.thresholds.high <= 1.0
    for key in (
        "recommended_fps",
        "window_seconds",
        "training_data",
        "cross_validation",
        "code_version",
    ):
        assert key in card
    assert sum(p.stat().st_size for p in default_model_dir().iterdir()) < 10 * 1024 * 1024


def test_predict_handles_empty_single_and_batched_input(detector, fight_clip):
    assert detector.predict(np.zeros((0, *detector.spec.shape), np.float32)).shape == (0,)
    assert detector.predict([]).shape == (0,)
    windows = clip_windows(decode_clip(fight_clip, detector.spec), detector.spec)
    batch = np.concatenate([windows] * 40)  # more than one internal chunk
    scores = detector.predict(batch)
    assert scores.shape == (len(batch),) and scores.dtype == np.float32
    assert np.all((scores >= 0) & (scores <= 1))
    np.testing.assert_allclose(scores[: len(windows)], detector.predict(windows), atol=1e-5)
    np.testing.assert_allclose(detector.predict(list(windows[:1])), scores[:1], atol=1e-5)


def test_score_clip_is_the_mean_window_score_in_any_batch_size(detector, fight_clip):
    frames = decode_clip(fight_clip, detector.spec)
    expected = float(detector.predict(clip_windows(frames, detector.spec)).mean())
    assert detector.score_clip(frames) == pytest.approx(expected, abs=1e-6)
    assert mean_window_score(detector.predict, frames, detector.spec, 1) == pytest.approx(
        expected, abs=1e-6
    )


def test_predict_rejects_wrong_shapes(detector):
    with pytest.raises(ValueError, match="expected windows of shape"):
        detector.predict(np.zeros((2, 3, 32, 32, 6), np.float32))


def test_score_frames_from_full_size_live_frames(detector, fight_clip):
    frames = decode_frames(fight_clip, fps=detector.spec.fps)[: detector.spec.window_frames]
    score = detector.score_frames(frames)
    assert 0.0 <= score <= 1.0
    assert score == pytest.approx(
        float(detector.predict(detector.preprocess(frames)[None])[0]), abs=1e-6
    )


def test_predict_is_thread_safe(detector, fight_clip, calm_clip):
    windows = np.concatenate(
        [
            clip_windows(decode_clip(c, detector.spec), detector.spec)
            for c in (fight_clip, calm_clip)
        ]
    )
    expected = detector.predict(windows)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(3):
                results.append(detector.predict(windows))
        except BaseException as error:  # collected so the main thread can fail loudly
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 12
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-5)


def test_thresholds_bands():
    bands = Thresholds(low=0.3, high=0.7)
    assert [bands.band(s) for s in (0.1, 0.3, 0.69, 0.7, 1.0)] == [
        "safe",
        "uncertain",
        "uncertain",
        "violent",
        "violent",
    ]
    with pytest.raises(ValueError):
        Thresholds(low=0.8, high=0.5)
    with pytest.raises(ValueError):
        Thresholds(low=0.3, high=0.7, decision=1.5)
    # A card without a decision cut gives its yes/no verdicts at the police-report cut.
    assert bands.verdict_cut == 0.7
    assert Thresholds(low=0.3, high=0.7, decision=0.45).verdict_cut == 0.45


def _misaligned(array: np.ndarray, by: int = 16) -> np.ndarray:
    """A copy of `array` whose data starts `by` bytes past a 64-byte boundary."""
    raw = np.empty(array.nbytes + 128, dtype=np.uint8)
    start = (-raw.ctypes.data) % TENSOR_ALIGNMENT + by
    copy = raw[start : start + array.nbytes].view(array.dtype).reshape(array.shape)
    copy[...] = array
    assert copy.ctypes.data % TENSOR_ALIGNMENT == by
    return copy


def test_the_batch_tensorflow_borrows_is_aligned_contiguous_and_writable():
    windows = np.random.default_rng(0).random((3, 4, 8, 8, 6), dtype=np.float32)
    aligned = aligned_empty(windows.shape)
    aligned[...] = windows
    assert is_tensor_shareable(aligned) and as_tensor_input(aligned) is aligned
    frozen = aligned.copy()
    frozen.flags.writeable = False
    for unfit in (
        _misaligned(windows),  # TensorFlow aborts the process on unaligned memory
        frozen,  # read-only: numpy exports no such array through DLPack
        np.asfortranarray(windows),
        windows.astype(np.float64),
        list(windows),
    ):
        shared = as_tensor_input(unfit)
        assert is_tensor_shareable(shared) and shared.dtype == np.float32
        np.testing.assert_array_equal(shared, windows)


def test_predict_gives_the_same_scores_from_memory_it_shares_or_copies(detector, fight_clip):
    import tensorflow as tf

    windows = clip_windows(decode_clip(fight_clip, detector.spec), detector.spec)
    # The model on a tensor TensorFlow copied itself, as before the batch was shared.
    expected = np.clip(
        detector._model(tf.convert_to_tensor(windows), training=False).numpy().reshape(-1), 0, 1
    )
    aligned = aligned_empty(windows.shape)
    aligned[...] = windows
    frozen = aligned.copy()
    frozen.flags.writeable = False
    for batch in (aligned, _misaligned(windows), _misaligned(windows, by=4), frozen):
        np.testing.assert_allclose(detector.predict(batch), expected, atol=1e-5)
    # The model reads the memory it borrows and never writes to it.
    np.testing.assert_array_equal(aligned, windows)


def test_a_reused_batch_array_never_leaks_a_previous_batch_into_the_next(fight_clip, calm_clip):
    cascade = CascadeDetector.load(default_model_dir(), with_stage2=False)
    spec = cascade.spec
    fight, calm = decode_clip(fight_clip, spec), decode_clip(calm_clip, spec)
    alone = [float(cascade.score_stage1_clips([clip])[0]) for clip in (fight, calm)]
    big = cascade.score_stage1_clips([fight, fight, calm])  # the thread's array grows
    small = cascade.score_stage1_clips([calm])  # a shorter batch in the same array
    np.testing.assert_allclose(big, [alone[0], alone[0], alone[1]], atol=1e-5)
    np.testing.assert_allclose(small, [alone[1]], atol=1e-5)
    # From another thread: its own array, the same scores.
    found: list[np.ndarray] = []
    worker = threading.Thread(target=lambda: found.append(cascade.score_stage1_clips([fight])))
    worker.start()
    worker.join()
    np.testing.assert_allclose(found[0], [alone[0]], atol=1e-5)
