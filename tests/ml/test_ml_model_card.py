"""The typed model card: schema-1 cards still read, schema-2 cascade cards round-trip, bad
thresholds and broken cards refused with a message naming what is wrong."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ml.input_spec import InputSpec
from ml.model_card import (
    CARD_FILE,
    Fusion,
    Gate,
    LogisticModel,
    ModelCard,
    ModelCardError,
    StageCard,
    ThresholdError,
    Thresholds,
    logit,
)

SHIPPED = Path(__file__).resolve().parents[2] / "ml" / "artifacts" / "default"

V1_CARD: dict[str, Any] = {
    "schema": 1,
    "version": "cnn-bilstm-test",
    "created_utc": "2026-11-24T09:52:29+00:00",
    "model_file": "model.keras",
    "architecture": {"summary": "tiny", "parameters": 10},
    "input_spec": InputSpec().to_dict(),
    "thresholds": {"low": 0.2, "high": 0.9, "decision": 0.45, "method": "test"},
    "cross_validation": {
        "scheme": "grouped",
        "folds": [{"fold": 1, "roc_auc": 0.8, "n_test": 3, "test_groups": ["1"], "seconds": 2}],
        "pooled_oof_at_0.5": {"roc_auc": 0.7},
        "out_of_fold": {"labels": [1, 0, 1], "scores": [0.9, 0.1, 0.4]},
    },
}


def cascade_card() -> ModelCard:
    return ModelCard(
        schema=2,
        version="cascade-test",
        created_utc="2026-11-30T00:00:00+00:00",
        input_spec=InputSpec(),
        thresholds=Thresholds(0.1, 0.8, 0.4, {"method": "test"}),
        stages=(
            StageCard("cnn", "cnn-bilstm", "model.keras", "ab" * 32),
            StageCard("pose", "pose-stage", "pose_stage.json", "cd" * 32, details={"fps": 5.0}),
        ),
        gate=Gate("cnn", 0.2, "95% recall", 0.97, 0.5),
        fusion=Fusion(
            "stacking-logistic",
            passed=LogisticModel(("cnn", "pose"), (0.8, 1.2), -0.3),
            gated_out=LogisticModel(("cnn",), (1.0,), -0.5),
        ),
    )


def test_schema_1_card_reads_as_one_stage_and_round_trips() -> None:
    card = ModelCard.from_dict(V1_CARD)
    assert card.schema == 1 and not card.is_cascade
    assert card.model_file == "model.keras"
    assert (card.thresholds.low, card.thresholds.high, card.thresholds.decision) == (0.2, 0.9, 0.45)
    assert card.cross_validation is not None
    assert card.cross_validation.fold_aucs == [0.8]
    assert card.cross_validation.out_of_fold is not None
    assert card.cross_validation.out_of_fold.scores == (0.9, 0.1, 0.4)
    assert card.to_dict() == V1_CARD


def test_the_shipped_card_loads() -> None:
    card = ModelCard.load(SHIPPED)
    raw = json.loads((SHIPPED / CARD_FILE).read_text())
    assert card.version == raw["version"]
    assert card.to_dict() == raw
    assert (SHIPPED / card.model_file).is_file()
    for stage in card.stages:
        assert (SHIPPED / stage.file).is_file(), stage.file


def test_schema_1_card_without_decision_falls_back_to_high() -> None:
    old = copy.deepcopy(V1_CARD)
    del old["thresholds"]["decision"]
    assert ModelCard.from_dict(old).thresholds.decision == 0.9


def test_cascade_card_round_trips_through_a_folder(tmp_path: Path) -> None:
    card = cascade_card()
    card.dump(tmp_path)
    again = ModelCard.load(tmp_path)
    assert again == card
    assert again.is_cascade and again.stage("pose").details == {"fps": 5.0}
    assert again.to_dict() == card.to_dict()


def test_cascade_card_without_decision_is_refused() -> None:
    data = cascade_card().to_dict()
    del data["thresholds"]["decision"]
    with pytest.raises(ModelCardError, match="decision"):
        ModelCard.from_dict(data)


def test_cascade_card_without_gate_or_fusion_is_refused() -> None:
    for key in ("gate", "fusion"):
        data = cascade_card().to_dict()
        del data[key]
        with pytest.raises(ModelCardError, match="gate and a fusion"):
            ModelCard.from_dict(data)


@pytest.mark.parametrize(
    ("low", "high", "decision", "message"),
    [
        (0.5, 0.5, 0.5, "low < high"),  # equal: nothing would reach experts
        (0.6, 0.4, 0.5, "low < high"),  # reversed
        (0.0, 0.5, 0.3, "strictly between"),  # zero: everything reaches experts
        (0.2, 1.0, 0.3, "strictly between"),  # one: never a police report
        (-0.1, 0.5, 0.3, "strictly between"),
        (0.2, 0.5, 1.5, "strictly between"),
        (float("nan"), 0.5, 0.3, "strictly between"),
        (0.2, "0.5", 0.3, "must be a number"),
    ],
)
def test_impossible_thresholds_are_refused(
    low: Any, high: Any, decision: Any, message: str
) -> None:
    with pytest.raises(ThresholdError, match=message):
        Thresholds(low, high, decision)
    with pytest.raises(ThresholdError):
        Thresholds.check(low, high, decision)


def test_threshold_errors_are_value_errors_for_callers_that_catch_those() -> None:
    with pytest.raises(ValueError):
        Thresholds.check(0.7, 0.3)


def test_bands() -> None:
    bands = Thresholds(0.2, 0.8, 0.5)
    assert [bands.band(s) for s in (0.0, 0.19, 0.2, 0.79, 0.8, 1.0)] == [
        "safe",
        "safe",
        "uncertain",
        "uncertain",
        "violent",
        "violent",
    ]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("version"),
        lambda d: d.pop("thresholds"),
        lambda d: d.update(schema=7),
        lambda d: d.update(stages=[]),
        lambda d: d["stages"][1].pop("file"),
        lambda d: d["gate"].update(stage="pose"),
        lambda d: d["gate"].update(cut="high"),
        lambda d: d["fusion"]["passed"].update(coef=[1.0]),
        lambda d: d["cross_validation"]["out_of_fold"].update(scores=[0.1]),
    ],
    ids=[
        "no-version",
        "no-thresholds",
        "unknown-schema",
        "no-stages",
        "stage-without-file",
        "gate-on-stage-2",
        "gate-cut-not-a-number",
        "fusion-coefficients-missing",
        "oof-lengths-differ",
    ],
)
def test_broken_cascade_cards_are_refused(mutate: Any) -> None:
    data = cascade_card().to_dict()
    data["cross_validation"] = {
        "scheme": "x",
        "folds": [],
        "out_of_fold": {"labels": [1, 0], "scores": [0.5, 0.2]},
    }
    ModelCard.from_dict(data)  # the unmutated card is fine
    mutate(data)
    with pytest.raises(ModelCardError):
        ModelCard.from_dict(data)


@pytest.mark.parametrize("content", ["", "{not json", "[1, 2]", "\xff\xfe"])
def test_unreadable_card_files_name_the_file(tmp_path: Path, content: str) -> None:
    (tmp_path / CARD_FILE).write_bytes(content.encode("latin-1"))
    with pytest.raises(ModelCardError, match=str(tmp_path)):
        ModelCard.load(tmp_path)


def test_missing_card_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelCardError, match="no model card"):
        ModelCard.load(tmp_path / "nowhere")


def test_fusion_uses_the_gated_out_model_without_stage_2() -> None:
    fusion = cascade_card().fusion
    assert fusion is not None
    # By hand: sigmoid(-0.5 + logit(0.7)) and sigmoid(-0.3 + 0.8 logit(0.7) + 1.2 logit(0.9)).
    import math

    def sigmoid(x: float) -> float:
        return 1 / (1 + math.exp(-x))

    assert fusion.score(0.7, None) == pytest.approx(sigmoid(-0.5 + logit(0.7)))
    assert fusion.score(0.7, 0.9) == pytest.approx(
        sigmoid(-0.3 + 0.8 * logit(0.7) + 1.2 * logit(0.9))
    )
    # Saturated scores stay finite.
    assert 0.0 < fusion.score(0.0, 0.0) < fusion.score(1.0, 1.0) < 1.0


def test_reading_a_card_loads_no_heavy_library() -> None:
    code = (
        "import sys; from ml.model_card import ModelCard; "
        f"ModelCard.load({str(SHIPPED)!r}); "
        "heavy = [m for m in ('tensorflow', 'keras', 'numpy', 'cv2') if m in sys.modules]; "
        "print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.stdout.strip() == "[]"
