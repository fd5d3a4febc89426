"""Building the cascade on a stored stage 1 (``ml.train --stage1-from``): the folds must be the
stage-1 card's, the data the one its out-of-fold scores came from; the card it writes loads and
names every file with its hash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml.datasets import scan_dataset
from ml.input_spec import InputSpec
from ml.model_card import ModelCard
from ml.runtime import CascadeDetector, check_model_files
from ml.train_cascade import STAGE1_CARD_FILE, build_cascade


def stage1_card(fixture_dir: Path, scores: list[float]) -> dict[str, Any]:
    """A schema-1 card for the fixture clips with the folds ml.train would build."""
    from sklearn.model_selection import StratifiedGroupKFold

    records = scan_dataset(fixture_dir).records
    labels = np.array([r.label for r in records])
    groups = np.array([str(r.group) for r in records])
    splitter = StratifiedGroupKFold(n_splits=2, shuffle=True, random_state=0)
    folds = [
        {"fold": k + 1, "n_test": len(test), "test_groups": sorted({groups[i] for i in test})}
        for k, (_, test) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups))
    ]
    return {
        "schema": 1,
        "version": "cnn-bilstm-fixture",
        "model_file": "model.keras",
        "input_spec": InputSpec().to_dict(),
        "thresholds": {"low": 0.2, "high": 0.8, "decision": 0.5},
        "training": {"config": {"seed": 0}},
        "training_data": {"sha256": "f" * 64, "skipped": []},
        "cross_validation": {
            "scheme": "test",
            "folds": folds,
            "out_of_fold": {"labels": labels.tolist(), "scores": scores},
        },
    }


@pytest.fixture()
def stage1_dir(tmp_path, fixture_dir):
    folder = tmp_path / "stage1"
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"not really a network")
    labels = [r.label for r in scan_dataset(fixture_dir).records]
    rng = np.random.default_rng(1)
    scores = [float(np.clip(0.3 + 0.4 * y + rng.normal(0, 0.15), 0.01, 0.99)) for y in labels]
    (folder / "model_card.json").write_text(json.dumps(stage1_card(fixture_dir, scores)))
    return folder


def test_the_cascade_is_built_on_a_stored_stage_1(stage1_dir, fixture_dir, tmp_path):
    out = tmp_path / "cascade"
    figures = build_cascade(
        data=[str(fixture_dir)],
        stage1_dir=stage1_dir,
        out=out,
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    card = check_model_files(out)  # every file there, hashes as the card says
    assert card.is_cascade and [s.name for s in card.stages] == ["cnn", "pose"]
    assert json.loads((out / STAGE1_CARD_FILE).read_text())["version"] == "cnn-bilstm-fixture"
    assert card.stages[0].details["thresholds"] == {"low": 0.2, "high": 0.8, "decision": 0.5}
    assert card.cross_validation is not None
    oof = card.cross_validation.out_of_fold
    assert oof is not None
    assert len(oof.labels) == 8 and oof.stage1 is not None and oof.folds is not None
    assert sorted(set(oof.folds)) == [1, 2]
    assert card.gate is not None and 0.0 <= card.gate.pass_rate_non_violent <= 1.0
    assert set(figures) >= {"stage1", "stage2", "fused", "thresholds", "at_cuts"}
    assert (out / "roc.png").is_file()
    # Built again on the cascade folder itself: stage 1 comes from its stage1_card.json.
    again = tmp_path / "again"
    shutil.copytree(out, again)
    build_cascade(
        data=[str(fixture_dir)], stage1_dir=again, out=again, cache_dir=tmp_path / "cache",
        progress=False,
    )  # fmt: skip
    assert ModelCard.load(again).fusion == card.fusion
    CascadeDetector.check(again)


def test_other_data_than_stage_1_saw_is_refused(stage1_dir, tmp_path, fixture_dir):
    card = json.loads((stage1_dir / "model_card.json").read_text())
    card["cross_validation"]["out_of_fold"]["labels"][0] ^= 1
    (stage1_dir / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="not what stage 1's out-of-fold scores"):
        build_cascade(
            data=[str(fixture_dir)], stage1_dir=stage1_dir, out=tmp_path / "o",
            cache_dir=tmp_path / "cache", progress=False,
        )  # fmt: skip


def test_other_folds_than_stage_1s_are_refused(stage1_dir, tmp_path, fixture_dir):
    card = json.loads((stage1_dir / "model_card.json").read_text())
    first, second = card["cross_validation"]["folds"]
    first["test_groups"], second["test_groups"] = second["test_groups"], first["test_groups"]
    (stage1_dir / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="not stage 1's"):
        build_cascade(
            data=[str(fixture_dir)], stage1_dir=stage1_dir, out=tmp_path / "o",
            cache_dir=tmp_path / "cache", progress=False,
        )  # fmt: skip


def test_a_stage_1_without_a_model_ships_nothing(stage1_dir, tmp_path, fixture_dir):
    (stage1_dir / "model.keras").unlink()
    with pytest.raises(FileNotFoundError, match="no trained stage 1"):
        build_cascade(
            data=[str(fixture_dir)], stage1_dir=stage1_dir, out=tmp_path / "o",
            cache_dir=tmp_path / "cache", progress=False,
        )  # fmt: skip


def test_degenerate_cuts_are_moved_inside_the_rule_and_the_card_says_so():
    from ml.model_card import Thresholds
    from ml.train_cascade import strict_bands

    for low, high, decision in ((0.3, 0.3, 0.3), (0.0, 1.0, 0.5), (0.0, 0.0, 0.0)):
        moved = strict_bands({"low": low, "high": high, "decision": decision, "method": "m"})
        Thresholds.from_dict(moved)  # valid now
        assert abs(moved["low"] - low) < 1e-5 and abs(moved["high"] - high) < 1e-5
        assert "moved by at most a hair" in moved["method"]
    kept = strict_bands({"low": 0.2, "high": 0.8, "decision": 0.5, "method": "m"})
    assert kept == {"low": 0.2, "high": 0.8, "decision": 0.5, "method": "m"}
