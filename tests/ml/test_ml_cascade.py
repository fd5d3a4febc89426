"""The cascade on tiny synthetic stages: gate choice, stacking fusion, cross-fitting, the
runtime's split and whole paths, and the file checks a worker runs before it starts."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from ml.fusion import choose_gate, cross_fit, fit_cascade, fit_logistic
from ml.input_spec import InputSpec
from ml.model_card import Fusion, Gate, LogisticModel, ModelCard, StageCard, Thresholds
from ml.runtime import CascadeDetector, ModelFilesError, check_model_files


class BrightnessStage1:
    """Stage 1 stand-in: a window's score is its mean brightness."""

    spec = InputSpec(frames=2, height=4, width=4)

    def preprocess(self, frames):
        return np.full(self.spec.shape, float(np.mean(frames)) / 255.0, dtype=np.float32)

    def predict(self, batch):
        return np.asarray(batch, dtype=np.float32).reshape(len(batch), -1).mean(axis=1)


class RedStage2:
    """Stage 2 stand-in: the share of red in the window; counts the windows it is asked for."""

    fps = 10.0

    def __init__(self):
        self.seen = 0

    def score_file(self, path):
        raise NotImplementedError("no files in these tests")

    def score(self, windows):
        self.seen += len(windows)
        out = []
        for frames in windows:
            frames = np.asarray(frames, dtype=np.float64)
            if frames.ndim != 4:
                out.append(np.nan)  # not images: the real stage returns NaN too
                continue
            out.append(frames[..., 0].mean() / max(1.0, frames.mean() * 3))
        return np.clip(np.array(out), 0, 1)


def card(gate_cut: float = 0.5) -> ModelCard:
    return ModelCard(
        schema=2,
        version="cascade-synthetic",
        created_utc="",
        input_spec=BrightnessStage1.spec,
        thresholds=Thresholds(0.3, 0.8, 0.5),
        stages=(
            StageCard(
                "cnn",
                "fake",
                "model.keras",
                details={"thresholds": {"low": 0.2, "high": 0.9, "decision": 0.5}},
            ),
            StageCard("pose", "fake", "pose_stage.json"),
        ),
        gate=Gate("cnn", gate_cut, "test", 1.0, 0.5),
        fusion=Fusion(
            "stacking-logistic",
            passed=LogisticModel(("cnn", "pose"), (1.0, 2.0), 0.0),
            gated_out=LogisticModel(("cnn",), (1.0,), -1.0),
        ),
    )


def fusion_of(detector: CascadeDetector) -> Fusion:
    assert detector.card.fusion is not None
    return detector.card.fusion


def window(brightness: int, red: float = 1.0) -> np.ndarray:
    frames = np.full((4, 8, 8, 3), brightness, dtype=np.float64)
    frames[..., 0] = np.clip(brightness * red, 0, 255)
    return frames.astype(np.uint8)


def test_only_windows_past_the_gate_reach_stage_2():
    stage2 = RedStage2()
    detector = CascadeDetector(card(gate_cut=0.5), BrightnessStage1(), stage2)
    windows = [window(20), window(200), window(100), window(230, red=0.2)]
    scores = detector.score_windows(windows)
    assert stage2.seen == 2
    assert [s.stage2 is None for s in scores] == [True, False, True, False]
    for s in scores:
        expected = (
            1 / (1 + math.exp(-(math.log(s.stage1 / (1 - s.stage1)) - 1.0)))
            if s.stage2 is None
            else fusion_of(detector).score(s.stage1, s.stage2)
        )
        assert s.fused == pytest.approx(expected)
        assert s.band == detector.thresholds.band(s.fused)


def test_the_split_path_gives_what_the_whole_path_gives():
    detector = CascadeDetector(card(), BrightnessStage1(), RedStage2())
    windows = [window(b, red) for b, red in ((10, 1), (140, 1), (200, 0.3), (250, 1))]
    whole = detector.score_windows(windows)
    # Worker A: stage 1 and the gate. Worker B (maybe another host): stage 2 of the gated ones.
    stage1 = detector.score_stage1(windows)
    passing = detector.gate_passes(stage1)
    stage2 = detector.score_stage2([w for w, p in zip(windows, passing, strict=True) if p])
    it = iter(stage2)
    split = [
        detector.fuse(s1, float(next(it)) if p else None)
        for s1, p in zip(stage1, passing, strict=True)
    ]
    assert split == whole


def test_pose_windows_can_be_larger_copies_of_the_same_frames():
    stage2 = RedStage2()
    detector = CascadeDetector(card(), BrightnessStage1(), stage2)
    small = [window(200, 0.5)]
    large = [np.repeat(np.repeat(small[0], 8, axis=1), 8, axis=2)]
    assert detector.score_windows(small, pose_windows=large) == detector.score_windows(small)
    with pytest.raises(ValueError, match="pose windows"):
        detector.score_windows(small, pose_windows=[])


def test_a_window_stage_2_cannot_read_falls_back_to_stage_1():
    detector = CascadeDetector(card(), BrightnessStage1(), RedStage2())
    good = window(220)
    scores = detector.score_windows([good], pose_windows=[np.zeros((3, 3))])  # not images
    assert scores[0].stage2 is None
    assert scores[0].fused == pytest.approx(fusion_of(detector).score(scores[0].stage1, None))


def test_a_stage_1_only_worker_refuses_stage_2_clearly():
    detector = CascadeDetector(card(), BrightnessStage1(), None)
    with pytest.raises(RuntimeError, match="stage 2 is not loaded"):
        detector.score_windows([window(250)])
    assert detector.score_windows([window(10)])[0].stage2 is None  # nothing passed the gate


def test_empty_batches():
    detector = CascadeDetector(card(), BrightnessStage1(), RedStage2())
    assert detector.score_windows([]) == []
    assert detector.score_stage2([]).shape == (0,)


# ---- fitting --------------------------------------------------------------------------------


def synthetic_oof(n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.repeat([1, 0], n // 2)
    stage1 = 1 / (1 + np.exp(-(rng.normal(0, 1.0, n) + 0.9 * (labels - 0.5) * 2)))
    stage2 = 1 / (1 + np.exp(-(rng.normal(0, 1.0, n) + 0.9 * (labels - 0.5) * 2)))
    folds = np.arange(n) % 5
    return labels, stage1, stage2, folds


def test_the_gate_keeps_the_recall_it_is_asked_for():
    labels, stage1, _, _ = synthetic_oof()
    for recall in (0.9, 0.95, 0.98, 1.0):
        cut = choose_gate(labels, stage1, recall)
        kept = (stage1[labels == 1] >= cut).mean()
        assert kept >= recall
        # The highest such cut: the next violent score up would drop below the recall.
        higher = np.sort(stage1[labels == 1])
        above = higher[higher >= cut]
        if len(above) > 1 and recall < 1:
            assert (stage1[labels == 1] >= above[1]).mean() < recall


def test_stacking_beats_either_stage_and_learns_positive_weights():
    from sklearn.metrics import roc_auc_score

    labels, stage1, stage2, folds = synthetic_oof(400)
    fit = fit_cascade(labels, stage1, stage2)
    assert all(c > 0 for c in fit.fusion.passed.coef)
    assert 0.5 < fit.gate.pass_rate_non_violent < 1.0 and fit.gate.pass_rate_violent >= 0.98
    fused, passed = cross_fit(labels, stage1, stage2, folds)
    assert not np.isnan(fused).any()
    assert roc_auc_score(labels, fused) > max(
        roc_auc_score(labels, stage1), roc_auc_score(labels, stage2)
    )
    assert passed.mean() < 1.0


def test_cross_fit_never_uses_a_folds_own_labels():
    labels, stage1, stage2, folds = synthetic_oof()
    fused, _ = cross_fit(labels, stage1, stage2, folds)
    flipped = labels.copy()
    flipped[folds == 0] = 1 - flipped[folds == 0]
    fused_flipped, _ = cross_fit(flipped, stage1, stage2, folds)
    # Fold 0's scores come from folds 1-4 only: its own labels do not move them.
    np.testing.assert_allclose(fused[folds == 0], fused_flipped[folds == 0])
    assert not np.allclose(fused[folds == 1], fused_flipped[folds == 1])


def test_gated_out_scores_match_the_rate_of_fights_below_the_gate_on_balanced_data():
    labels, stage1, stage2, _ = synthetic_oof(400, seed=2)
    fit = fit_cascade(labels, stage1, stage2, gate_recall=0.95, fit_intercept=True)
    below = stage1 < fit.gate.cut
    predicted = np.array([fit.fusion.score(s, None) for s in stage1[below]])
    assert abs(predicted.mean() - labels[below].mean()) < 0.05
    # Monotone in stage 1.
    grid = np.linspace(0.01, fit.gate.cut, 20)
    assert np.all(np.diff([fit.fusion.score(g, None) for g in grid]) >= 0)


def test_the_default_fusion_has_no_intercept_and_one_scale_for_both_paths():
    labels, stage1, stage2, _ = synthetic_oof(400, seed=3)
    fit = fit_cascade(labels, stage1, stage2)
    assert fit.fusion.passed.intercept == 0.0 and fit.fusion.gated_out.intercept == 0.0
    assert fit.fusion.gated_out.coef == fit.fusion.passed.coef[:1]
    assert all(c > 0 for c in fit.fusion.passed.coef)
    # Stopped by the gate == passed with stage 2 at 0.5 (no evidence either way).
    for s in (0.05, 0.3, 0.9):
        assert fit.fusion.score(s, None) == pytest.approx(fit.fusion.score(s, 0.5))
    # Class balance moves the fitted intercept; without one, scores at 0.5/0.5 stay at 0.5.
    keep = (labels == 1) | (np.arange(len(labels)) % 3 == 0)
    lopsided = fit_cascade(labels[keep], stage1[keep], stage2[keep])
    assert lopsided.fusion.score(0.5, 0.5) == pytest.approx(0.5)


def test_nested_stage_2_scores_are_what_each_folds_fusion_is_fitted_on():
    labels, stage1, stage2, folds = synthetic_oof()
    plain, _ = cross_fit(labels, stage1, stage2, folds)
    same, _ = cross_fit(labels, stage1, stage2, folds, {k: stage2 for k in np.unique(folds)})
    np.testing.assert_allclose(plain, same)
    noisy = {k: np.clip(stage2 + 0.3 * (k + 1) * (0.5 - stage2), 0.01, 0.99) for k in range(5)}
    nested, _ = cross_fit(labels, stage1, stage2, folds, noisy)
    assert not np.allclose(nested, plain)


def test_stage_1_frames_are_resampled_to_stage_2s_rate_when_no_pose_frames_are_given():
    from ml.cascade_pose import resample_indices

    assert resample_indices(16, 10.0, 7.5) == [0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14]
    assert resample_indices(5, 10.0, 10.0) == [0, 1, 2, 3, 4]
    assert resample_indices(0, 10.0, 7.5) == []


def test_one_class_below_the_gate_gives_a_constant_not_a_crash():
    model = fit_logistic(("cnn",), np.array([[0.1], [0.2], [0.05]]), np.array([0, 0, 0]))
    assert model.coef == (0.0,) and model([0.1]) < 0.2


def test_stage_2_missing_where_the_gate_passes_is_refused():
    labels, stage1, stage2, _ = synthetic_oof()
    stage2 = stage2.copy()
    stage2[np.argmax(stage1)] = np.nan
    with pytest.raises(ValueError, match="stage-2 scores are missing"):
        fit_cascade(labels, stage1, stage2)


# ---- the files a worker checks before it starts -------------------------------------------


def write_artifact(folder: Path) -> ModelCard:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.keras").write_bytes(b"weights")
    (folder / "pose_stage.json").write_text(json.dumps({"kind": "fake"}))
    (folder / "pose.tflite").write_bytes(b"pose model")

    def sha(name: str) -> str:
        return hashlib.sha256((folder / name).read_bytes()).hexdigest()

    base = card()
    stages = (
        StageCard("cnn", "fake", "model.keras", sha("model.keras"), details=base.stages[0].details),
        StageCard(
            "pose",
            "fake",
            "pose_stage.json",
            sha("pose_stage.json"),
            details={"pose_model": {"file": "pose.tflite", "sha256": sha("pose.tflite")}},
        ),
    )
    full = ModelCard(**{**base.__dict__, "stages": stages})
    full.dump(folder)
    return full


def test_an_intact_artifact_passes_the_check(tmp_path):
    written = write_artifact(tmp_path / "v")
    assert check_model_files(tmp_path / "v") == written
    CascadeDetector.check(tmp_path / "v")


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        ("model.keras", "delete", "model.keras: missing"),
        ("model.keras", "alter", "model.keras: altered"),
        ("pose_stage.json", "alter", "pose_stage.json: altered"),
        ("pose.tflite", "delete", "pose model pose.tflite is missing"),
        ("pose.tflite", "alter", "pose.tflite is altered"),
        ("model_card.json", "delete", "no model card"),
        ("model_card.json", "alter", "unreadable model card"),
    ],
)
def test_a_missing_or_altered_file_is_named(tmp_path, name, damage, message):
    folder = tmp_path / "v"
    write_artifact(folder)
    if damage == "delete":
        (folder / name).unlink()
    else:
        with open(folder / name, "ab") as handle:
            handle.write(b"\x00tampered")
    with pytest.raises(ModelFilesError, match=message):
        CascadeDetector.check(folder)
    with pytest.raises(ModelFilesError):
        CascadeDetector.load(folder)


# ---- the shipped cascade --------------------------------------------------------------------

SHIPPED = Path(__file__).resolve().parents[2] / "ml" / "artifacts" / "default"


def test_stage_1_alone_keeps_its_own_bands_on_a_cascade_card():
    from ml.runtime import stage1_thresholds

    card = ModelCard.load(SHIPPED)
    assert card.is_cascade
    own = json.loads((SHIPPED / card.stages[0].details["card"]).read_text())["thresholds"]
    bands = stage1_thresholds(card)
    assert (bands.low, bands.high, bands.decision) == (own["low"], own["high"], own["decision"])
    assert bands != card.thresholds  # the fused bands are others


@pytest.fixture(scope="module")
def shipped():
    return CascadeDetector.load(SHIPPED)


def test_the_shipped_cascade_scores_a_fixture_clip_as_its_card_says(shipped, fight_clip):
    from ml.video import decode_frames

    frames = decode_frames(fight_clip, fps=shipped.spec.fps)
    window = frames[: shipped.spec.window_frames]
    [scored] = shipped.score_windows([window])
    assert scored.stage1 == pytest.approx(float(shipped.score_stage1([window])[0]))
    assert (scored.stage2 is not None) == shipped.card.gate.passes(scored.stage1)
    assert scored.fused == pytest.approx(fusion_of(shipped).score(scored.stage1, scored.stage2))
    # A whole clip streamed from its file by stage 2 equals stage 2 on its frames decoded at
    # the card's stage-2 rate.
    assert shipped.stage2_fps == shipped.card.stages[1].details["fps"]
    pose_frames = decode_frames(fight_clip, fps=shipped.stage2_fps)
    assert shipped.score_stage2_file(fight_clip) == pytest.approx(
        float(shipped.score_stage2([pose_frames])[0]), abs=1e-6
    )


@pytest.mark.parametrize(
    "kind", ["black", "tiny", "rotated", "noise", "one-frame-grey", "huge-and-flat"]
)
def test_odd_frames_get_a_score_not_a_crash(shipped, fight_clip, kind):
    from ml.video import decode_frames

    frames = decode_frames(fight_clip, fps=shipped.spec.fps)[: shipped.spec.window_frames]
    rng = np.random.default_rng(0)
    odd = {
        "black": [np.zeros((360, 640, 3), np.uint8)] * 16,
        "tiny": [np.full((6, 9, 3), 128, np.uint8)] * 16,
        "rotated": [np.ascontiguousarray(np.rot90(f)) for f in frames],
        "noise": [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(16)],
        "one-frame-grey": [np.full((120, 160, 3), 90, np.uint8)] * 2,
        "huge-and-flat": [np.full((1080, 1920, 3), 200, np.uint8)] * 4,
    }[kind]
    [stage2] = shipped.score_stage2([odd])
    assert np.isfinite(stage2) and 0.0 <= stage2 <= 1.0
    [scored] = shipped.score_windows([odd])
    assert 0.0 <= scored.fused <= 1.0 and scored.band in ("safe", "uncertain", "violent")


def test_a_segment_scores_what_evaluate_gives_the_same_clip(shipped, fight_clip, calm_clip):
    """The live path (score_clips on a segment's frames: small copies at the analysis rate for
    stage 1, full-size frames decoded at the card's stage-2 rate for stage 2) and ml.evaluate
    on the file agree."""
    from ml.evaluate import score_file
    from ml.video import decode_frames

    for clip in (fight_clip, calm_clip):
        # The reader's frames: model size, by the card's rule (ml.video.model_frame).
        small = decode_frames(clip, fps=shipped.spec.fps, spec=shipped.spec)
        pose = decode_frames(clip, fps=shipped.stage2_fps)
        [live] = shipped.score_clips([small], pose_clips=[pose])
        offline = score_file(clip, shipped)
        assert live.stage1 == pytest.approx(offline.stage1, abs=1e-5)
        assert (live.stage2 is None) == (offline.stage2 is None)
        if live.stage2 is not None:
            assert live.stage2 == pytest.approx(offline.stage2, abs=1e-5)
        assert live.fused == pytest.approx(offline.fused, abs=1e-4)
        assert live.band == offline.band


def test_score_clips_averages_stage_1_over_each_clips_windows():
    detector = CascadeDetector(card(gate_cut=0.99), BrightnessStage1(), RedStage2())
    length = detector.spec.window_frames  # 16 frames at 10 fps
    dark_then_bright = np.concatenate(
        [window(0)[:1].repeat(length, 0), window(255)[:1].repeat(length, 0)]
    )
    short = window(100)[:2]
    results = detector.score_clips([dark_then_bright, short])
    # Windows every quarter window over 32 frames: starts 0, 4, ..., 16.
    starts = range(0, 2 * length - length + 1, length // 4)
    expected = np.mean([np.mean(dark_then_bright[s : s + length]) / 255 for s in starts])
    assert results[0].stage1 == pytest.approx(expected, abs=1e-6)
    assert results[1].stage1 == pytest.approx(100 / 255, abs=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        detector.score_clips([window(10)[:1]])
