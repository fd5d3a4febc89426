"""The pose stage model: fit, predict, JSON round trip, card folds and nested stacking."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import StratifiedGroupKFold

from ml.pose_features import FEATURE_NAMES, VIEW_FEATURE_NAMES
from ml.pose_stage import LogisticStack, PoseStage, card_folds, grouped_cv

CARD = Path(__file__).resolve().parents[2] / "ml" / "artifacts" / "default" / "model_card.json"
SHARED = Path("/work/shared/datasets/surveillance-fight")


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    features = rng.gamma(2.0, 1.0, (n, len(VIEW_FEATURE_NAMES)))
    features[:, 7] += 3.0 * labels  # one informative feature
    return features, labels


def test_fit_predicts_probabilities_and_learns_the_signal() -> None:
    features, labels = synthetic(300)
    stage = PoseStage().fit(features, labels, seed=0)
    scores = stage.predict(features)
    assert scores.shape == (300,) and ((scores >= 0) & (scores <= 1)).all()
    assert scores[labels == 1].mean() > scores[labels == 0].mean() + 0.3
    assert np.argmax(np.abs(stage.coef)) == 7


def test_json_round_trip_gives_the_same_scores() -> None:
    features, labels = synthetic(120)
    stage = PoseStage(C=0.3).fit(features, labels, seed=1)
    text = json.dumps(stage.to_dict())
    again = PoseStage.from_dict(json.loads(text))
    np.testing.assert_array_equal(again.predict(features), stage.predict(features))


def test_bad_features_and_foreign_dicts_are_refused() -> None:
    features, labels = synthetic(50)
    stage = PoseStage().fit(features, labels)
    with pytest.raises(ValueError, match="pose features"):
        stage.predict(features[:, :10])
    with pytest.raises(RuntimeError, match="not fitted"):
        PoseStage().predict(features)
    data = stage.to_dict()
    with pytest.raises(ValueError, match="schema"):
        PoseStage.from_dict({**data, "schema": "other"})
    with pytest.raises(ValueError, match="other features"):
        PoseStage.from_dict({**data, "feature_names": ["a"] * len(VIEW_FEATURE_NAMES)})
    # A one-view stage is a valid layout too.
    single = PoseStage(feature_names=FEATURE_NAMES).fit(features[:, : len(FEATURE_NAMES)], labels)
    assert PoseStage.from_dict(single.to_dict()).feature_names == FEATURE_NAMES
    # NaN and negative features (a corrupt row) still give a score.
    broken = features[:2].copy()
    broken[0, 0], broken[1, 1] = np.nan, -5.0
    assert np.isfinite(stage.predict(broken)).all()


def test_stack_learns_weights_for_the_better_score() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    good = np.clip(0.5 + 0.35 * (labels - 0.5) * 2 + rng.normal(0, 0.15, 400), 0.01, 0.99)
    noise = rng.uniform(0.01, 0.99, 400)
    stack = LogisticStack().fit(np.stack([good, noise], 1), labels)
    assert stack.coef[0] > 5 * abs(stack.coef[1])
    again = LogisticStack.from_dict(json.loads(json.dumps(stack.to_dict())))
    np.testing.assert_allclose(
        again.predict(np.stack([good, noise], 1)), stack.predict(np.stack([good, noise], 1))
    )


def _card_for(labels: np.ndarray, groups: np.ndarray) -> dict[str, object]:
    splitter = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0)
    folds = [
        {"fold": k + 1, "n_test": len(test), "test_groups": sorted({str(g) for g in groups[test]})}
        for k, (_, test) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups))
    ]
    return {"training": {"config": {"seed": 0}}, "cross_validation": {"folds": folds}}


def test_folds_are_rebuilt_and_a_card_from_other_folds_is_refused() -> None:
    rng = np.random.default_rng(3)
    groups = rng.integers(0, 20, 150).astype(str)
    labels = rng.integers(0, 2, 150)
    card = _card_for(labels, groups)
    folds = card_folds(labels, groups, card)
    assert sorted(np.concatenate(folds).tolist()) == list(range(150))
    wrong = json.loads(json.dumps(card))
    wrong["cross_validation"]["folds"][0]["test_groups"] = ["nope"]
    with pytest.raises(ValueError, match="fold 1"):
        card_folds(labels, groups, wrong)


def test_grouped_cv_scores_every_clip_pose_alone_and_stacked() -> None:
    rng = np.random.default_rng(5)
    labels = np.repeat([1, 0], 40)
    groups = np.tile(np.arange(10), 8).astype(str)
    windows = []
    for label in labels:
        features, _ = synthetic(int(rng.integers(1, 4)), seed=int(rng.integers(1_000_000)))
        features[:, 7] += 5.0 * label
        windows.append(features)
    folds = card_folds(labels, groups, _card_for(labels, groups))
    cnn = np.clip(0.5 + 0.2 * (labels - 0.5) + rng.normal(0, 0.2, 80), 0.01, 0.99)
    result = grouped_cv(windows, labels, folds, cnn)
    assert np.isfinite(result["pose_oof"]).all() and np.isfinite(result["stacked_oof"]).all()
    assert result["pose"]["pooled_auc"] > 0.8
    assert len(result["stacked"]["fold_auc"]) == 5


@pytest.mark.skipif(not SHARED.is_dir(), reason="dataset-wide check needs the shared dataset")
def test_the_shipped_cards_folds_are_reproduced_on_the_shared_dataset() -> None:
    from ml.datasets import scan_dataset

    records = scan_dataset(SHARED).records
    labels = np.array([r.label for r in records])
    groups = np.array([r.group for r in records])
    card = json.loads(CARD.read_text())
    assert card["cross_validation"]["out_of_fold"]["labels"] == labels.tolist()
    folds = card_folds(labels, groups, card)
    assert [len(f) for f in folds] == [f["n_test"] for f in card["cross_validation"]["folds"]]


def test_stack_without_intercept_by_default_and_with_one_on_request() -> None:
    rng = np.random.default_rng(2)
    labels = np.r_[np.ones(150), np.zeros(50)].astype(int)  # imbalanced: an intercept would move
    scores = np.clip(0.5 + 0.3 * (labels - 0.5) + rng.normal(0, 0.2, (200, 2)).T, 0.01, 0.99).T
    plain = LogisticStack().fit(scores, labels)
    assert plain.intercept == 0.0 and plain.to_dict()["fit_intercept"] is False
    fitted = LogisticStack(fit_intercept=True).fit(scores, labels)
    assert fitted.intercept > 0.3
    again = LogisticStack.from_dict(json.loads(json.dumps(fitted.to_dict())))
    np.testing.assert_allclose(again.predict(scores), fitted.predict(scores))


def test_group_bootstrap_gain_is_zero_for_equal_scores_and_positive_for_better_ones() -> None:
    from ml.pose_stage import group_bootstrap_gain

    rng = np.random.default_rng(4)
    labels = np.tile([0, 1], 60)
    groups = np.repeat(np.arange(12), 10).astype(str)
    noisy = rng.uniform(0, 1, 120)
    better = np.clip(noisy + 0.5 * labels, 0, 1.5)
    assert group_bootstrap_gain(labels, groups, noisy, noisy, draws=200) == [0.0, 0.0, 0.0]
    low, mid, high = group_bootstrap_gain(labels, groups, noisy, better, draws=200)
    assert 0 < low <= mid <= high


def test_fit_clips_counts_each_clip_once_whatever_its_length() -> None:
    features, _ = synthetic(40, seed=7)
    long_calm = np.repeat(features[:1], 30, axis=0)  # one calm clip of 30 identical windows
    windows = [long_calm] + [features[i : i + 1] + 3.0 * (i % 2) for i in range(1, 40)]
    labels = np.array([0] + [i % 2 for i in range(1, 40)])
    stage = PoseStage().fit_clips(windows, labels, seed=0)
    assert 0.0 <= stage.score_clip(windows[0]) <= 1.0
    weighted = PoseStage().fit(
        np.concatenate(windows),
        np.concatenate([np.full(len(w), y) for w, y in zip(windows, labels, strict=True)]),
    )
    # Unweighted, the 30 copies dominate; weighted, the long clip counts as one.
    assert abs(weighted.intercept - stage.intercept) > 0.1
    with pytest.raises(ValueError, match="labels"):
        PoseStage().fit_clips(windows, labels[:-1])


@pytest.mark.slow
def test_fit_command_writes_a_stage_that_loads_and_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixture_dir: Path
) -> None:
    import ml.pose
    from ml.pose import PoseEstimator
    from ml.pose_stage import main, window_vector
    from ml.video import decode_frames

    monkeypatch.setattr(ml.pose, "DEFAULT_CACHE_DIR", tmp_path / "cache")
    out = tmp_path / "stage.json"
    assert main(["fit", "--data", str(fixture_dir), "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["design"] == {"fps": 7.5, "tiles": 2, "views": "both", "window_seconds": 1.6}
    stage = PoseStage.from_dict(record)
    assert len(list((tmp_path / "cache" / "pose").glob("*.npz"))) == 16  # 8 clips x 2 views
    # The live path: one window of frames -> features -> a score.
    frames = decode_frames(fixture_dir / "fight" / "fi135.mp4", fps=7.5)[:12]
    vector = window_vector(PoseEstimator.load(tiles=2), frames)
    score = stage.predict(vector[None])
    assert score.shape == (1,) and 0.0 <= float(score[0]) <= 1.0
