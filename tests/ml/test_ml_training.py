from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ml.datasets import scan_dataset
from ml.model import ModelConfig, build_model
from ml.preprocess import InputSpec
from ml.runtime import make_predict_fn
from ml.train import (
    FitContext,
    FitJob,
    FitResult,
    TrainConfig,
    WeightAverage,
    WindowBatches,
    _inner_split,
    configure_tensorflow,
    early_stopped_epochs,
    fit_model,
    fold_jobs,
    load_clips,
    mix_up,
    run_fit,
    run_fits,
    summarise_cv,
    without_colour,
)

ROOT = Path(__file__).resolve().parents[2]
TINY_SPEC = InputSpec(frames=4, height=32, width=32)
TINY_MODEL = ModelConfig(widths=(8, 16, 16), lstm_units=8, dropout=0.0, weight_decay=0.0)


@pytest.fixture(scope="module")
def fixture_clips(fixture_dir, tmp_path_factory):
    configure_tensorflow(seed=0)
    cache = tmp_path_factory.mktemp("cache")
    return load_clips(scan_dataset(fixture_dir), TINY_SPEC, cache, progress=False)


def test_model_shapes_and_bidirectional_lstm():
    model = build_model(InputSpec(), ModelConfig())
    assert model.input_shape == (None, *InputSpec().shape)
    assert model.output_shape == (None, 1)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"TimeDistributed", "Bidirectional"} <= kinds
    assert model.count_params() < 200_000


def test_augmented_batches_are_reproducible_and_valid(fixture_clips):
    config = TrainConfig(batch_size=4, windows_per_clip=2)
    first = list(WindowBatches(fixture_clips, TINY_SPEC, config, seed=3).epoch(0))
    again = list(WindowBatches(fixture_clips, TINY_SPEC, config, seed=3).epoch(0))
    other_epoch = list(WindowBatches(fixture_clips, TINY_SPEC, config, seed=3).epoch(1))
    assert len(first) == 4
    for (x, y), (x2, y2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
        assert x.shape == (4, *TINY_SPEC.shape) and x.dtype == np.float32
    assert not np.array_equal(first[0][0], other_epoch[0][0])


def test_batches_do_not_depend_on_how_many_are_preprocessed_at_once(fixture_clips, monkeypatch):
    config = TrainConfig(batch_size=2, windows_per_clip=2)
    whole = list(WindowBatches(fixture_clips, TINY_SPEC, config, seed=4).epoch(2))
    monkeypatch.setattr(WindowBatches, "BATCHES_PER_CHUNK", 1)
    chunked = list(WindowBatches(fixture_clips, TINY_SPEC, config, seed=4).epoch(2))
    assert len(whole) == len(chunked) == 8
    for (x, y), (x2, y2) in zip(whole, chunked, strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)


def test_tiny_model_loss_falls_on_real_fixture_clips(fixture_clips):
    assert len(fixture_clips) == 8
    config = TrainConfig(batch_size=8, windows_per_clip=4, learning_rate=1e-2, label_smoothing=0.0)
    model, info = fit_model(
        fixture_clips, None, TINY_SPEC, TINY_MODEL, config, seed=0, epochs=12, progress=False
    )
    losses = [entry["loss"] for entry in info["history"]]
    assert len(losses) == 12
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.05
    scores = make_predict_fn(model, TINY_SPEC)(
        next(WindowBatches(fixture_clips, TINY_SPEC, config, seed=9).epoch(0))[0]
    )
    assert scores.shape == (8,) and np.all((scores >= 0) & (scores <= 1))


def test_fit_is_reproducible_for_a_seed(fixture_clips):
    config = TrainConfig(batch_size=8, windows_per_clip=1)
    _, first = fit_model(
        fixture_clips, None, TINY_SPEC, TINY_MODEL, config, seed=5, epochs=2, progress=False
    )
    _, second = fit_model(
        fixture_clips, None, TINY_SPEC, TINY_MODEL, config, seed=5, epochs=2, progress=False
    )
    assert [h["loss"] for h in first["history"]] == [h["loss"] for h in second["history"]]


def test_weight_average_is_the_mean_in_the_original_dtype():
    average = WeightAverage()
    for step in range(3):
        average.add([np.full((2, 2), step, np.float32), np.array([step * 2], np.int64)])
    first, second = average.mean()
    np.testing.assert_array_equal(first, np.ones((2, 2), np.float32))
    assert first.dtype == np.float32 and second.dtype == np.int64 and second[0] == 2


def test_weight_averaging_ignores_validation_and_one_epoch_is_the_plain_fit(fixture_clips):
    def fit(config, val=None):
        return fit_model(
            fixture_clips, val, TINY_SPEC, TINY_MODEL, config, 5, epochs=3, progress=False
        )

    plain, _ = fit(TrainConfig(batch_size=8, averaged_epochs=0))
    averaged_one, info = fit(TrainConfig(batch_size=8, averaged_epochs=1), val=fixture_clips[:4])
    # Averaging trains the full epochs: the validation clips neither stop nor score it.
    assert info["best_epoch"] == 3 and all("val_auc" not in h for h in info["history"])
    for a, b in zip(plain.get_weights(), averaged_one.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    averaged_three, _ = fit(TrainConfig(batch_size=8, averaged_epochs=3))
    # Without averaging, validation clips drive early stopping and are scored every epoch.
    _, stopped = fit(
        TrainConfig(batch_size=8, averaged_epochs=0, min_epochs=1, patience=1),
        val=fixture_clips,
    )
    assert all("val_auc" in h for h in stopped["history"]) and 1 <= stopped["best_epoch"] <= 3
    assert any(
        not np.allclose(a, b)
        for a, b in zip(plain.get_weights(), averaged_three.get_weights(), strict=True)
    )


def test_fits_in_worker_processes_match_fits_in_this_process(fixture_clips):
    config = TrainConfig(batch_size=8, windows_per_clip=1, mirror=True)
    context = FitContext(fixture_clips, TINY_SPEC, TINY_MODEL, config)
    everything = tuple(range(len(fixture_clips)))
    jobs = [
        FitJob(label="a", seed=1, train=everything[2:], test=everything[:2], epochs=2),
        FitJob(label="b", seed=2, train=everything, epochs=2),
    ]
    in_workers = run_fits(jobs, context, workers=2, progress=False)
    assert [r.test_scores.shape for r in in_workers] == [(2,), (0,)]
    for job, result in zip(jobs, in_workers, strict=True):
        here = run_fit(job, context, progress=False)
        assert len(result.info["history"]) == 2
        # Same seed, same fit: a worker runs TensorFlow on one thread, this process on
        # several, so only the summation order may differ.
        for a, b in zip(result.weights, here.weights, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(result.test_scores, here.test_scores, atol=1e-5)
    # Each job's own seed: the results come back in job order, not in finishing order.
    assert not np.allclose(in_workers[0].weights[0], in_workers[1].weights[0])


def test_validation_split_holds_out_whole_groups_or_nothing(fixture_clips):
    labels = [c.record.label for c in fixture_clips]
    train, val = _inner_split(fixture_clips, list(range(len(fixture_clips))), seed=0)
    assert sorted(train + val) == list(range(len(fixture_clips))) and val
    groups = {fixture_clips[i].record.group for i in val}
    assert not groups & {fixture_clips[i].record.group for i in train}
    # One calm clip cannot be split between training and validation: no validation at all.
    violent = [i for i, label in enumerate(labels) if label]
    one_calm = [*violent[:3], labels.index(0)]
    assert _inner_split(fixture_clips, one_calm, seed=0) == (one_calm, [])


def test_mixup_blends_windows_and_labels_with_the_same_weights():
    rng = np.random.default_rng(0)
    windows = np.stack([np.zeros((2, 3, 3, 6)), np.ones((2, 3, 3, 6))]).astype(np.float32)
    labels = np.array([0.0, 1.0], np.float32)
    mixed, mixed_labels = mix_up(windows, labels, 0.4, rng)
    assert mixed.dtype == np.float32 and mixed.shape == windows.shape
    # Window i is weight * own + (1 - weight) * partner; with a 0-window and a 1-window the
    # blended value is the blended label itself.
    for window, label in zip(mixed, mixed_labels, strict=True):
        np.testing.assert_allclose(window, label, atol=1e-6)
    assert np.all((mixed_labels >= 0) & (mixed_labels <= 1))


def test_mixup_keeps_the_augmentation_draws(fixture_clips):
    plain = TrainConfig(batch_size=4, windows_per_clip=1)
    mixed = TrainConfig(batch_size=4, windows_per_clip=1, mixup=0.4)
    for (x, y), (mx, my) in zip(
        WindowBatches(fixture_clips, TINY_SPEC, plain, seed=2).epoch(0),
        WindowBatches(fixture_clips, TINY_SPEC, mixed, seed=2).epoch(0),
        strict=True,
    ):
        assert not np.array_equal(x, mx)
        # Blends of the same windows: mixing never leaves the range of the batch.
        assert x.min() - 1e-6 <= mx.min() and mx.max() <= x.max() + 1e-6
        # Each soft label lies between the labels of the batch it blends.
        assert min(y) <= my.min() and my.max() <= max(y)


def test_cv_folds_train_every_ensemble_member_and_score_their_mean(fixture_clips):
    jobs = fold_jobs(fixture_clips, TrainConfig(folds=2), members=2)
    assert [job.fold for job in jobs] == [1, 1, 2, 2]
    for first, second in (jobs[:2], jobs[2:]):
        assert first.train == second.train and first.test == second.test
        assert first.seed != second.seed
        train_groups = {fixture_clips[i].record.group for i in first.train}
        assert not train_groups & {fixture_clips[i].record.group for i in first.test}
    assert sorted(jobs[0].test + jobs[2].test) == list(range(len(fixture_clips)))
    # Member 1 of each fold keeps the single-model seed, so --ensemble 1 CV is its subset.
    assert [j.seed for j in fold_jobs(fixture_clips, TrainConfig(folds=2))] == [
        jobs[0].seed,
        jobs[2].seed,
    ]

    def finished(job, score):
        info = {"best_epoch": 3, "best_val_auc": -1.0, "history": []}
        return FitResult([], info, np.full(len(job.test), score), seconds=2.0)

    results = [finished(job, score) for job, score in zip(jobs, (0.2, 0.6, 0.9, 0.5), strict=True)]
    cv = summarise_cv(fixture_clips, jobs, results)
    np.testing.assert_allclose(cv["oof_scores"][list(jobs[0].test)], 0.4)
    np.testing.assert_allclose(cv["oof_scores"][list(jobs[2].test)], 0.7)
    assert [(f["fold"], f["members"], f["seconds"]) for f in cv["folds"]] == [
        (1, 2, 4.0),
        (2, 2, 4.0),
    ]


def test_command_line_help_loads_no_tensorflow():
    # `--help` and argument errors should answer at once, not after TensorFlow's import.
    probe = (
        "import sys, ml.train, ml.evaluate; "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "[]"


def test_time_reversal_plays_some_windows_backwards_and_keeps_the_rest(fixture_clips):
    plain = TrainConfig(batch_size=8, windows_per_clip=2)
    reversed_half = TrainConfig(batch_size=8, windows_per_clip=2, time_reversal=True)
    same = changed = 0
    for (x, y), (rx, ry) in zip(
        WindowBatches(fixture_clips, TINY_SPEC, plain, seed=1).epoch(0),
        WindowBatches(fixture_clips, TINY_SPEC, reversed_half, seed=1).epoch(0),
        strict=True,
    ):
        np.testing.assert_array_equal(y, ry)
        for window, other in zip(x, rx, strict=True):
            if np.array_equal(window, other):
                same += 1
            else:
                changed += 1
    assert same and changed


def test_grey_windows_lose_their_colour_and_keep_their_brightness(fixture_clips):
    frames = fixture_clips[0].frames[:3]
    grey = without_colour(frames)
    assert grey.shape == frames.shape and grey.dtype == np.uint8
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    luma = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.abs(grey[..., 0].astype(np.float32) - luma).max() <= 0.5 + 1e-3
    assert not np.array_equal(grey, frames)  # the fixture clip is in colour

    config = TrainConfig(batch_size=8, windows_per_clip=2, grey_fraction=0.5)
    plain = TrainConfig(batch_size=8, windows_per_clip=2)
    changed = [
        not np.array_equal(a, b)
        for (x, _), (gx, _) in zip(
            WindowBatches(fixture_clips, TINY_SPEC, plain, seed=6).epoch(0),
            WindowBatches(fixture_clips, TINY_SPEC, config, seed=6).epoch(0),
            strict=True,
        )
        for a, b in zip(x, gx, strict=True)
    ]
    assert any(changed) and not all(changed)


def test_early_stopped_final_fit_trains_the_median_best_epoch_within_bounds():
    folds = [{"best_epoch": e} for e in (18, 22, 25, 30, 40)]
    assert early_stopped_epochs(folds, TrainConfig(min_epochs=15, max_epochs=40)) == 25
    # min_epochs never pushes the final fit past max_epochs (it used to).
    assert early_stopped_epochs(folds, TrainConfig(min_epochs=15, max_epochs=3)) == 3
    assert early_stopped_epochs(folds[:1], TrainConfig(min_epochs=20, max_epochs=40)) == 20
