"""The apps read a model card through one function (the typed `ml.model_card.ModelCard`), and a
bad card is a clear error."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError

from detection.model_versions import card_metrics, model_card_from, read_model_card

GOOD = {
    "version": "v7",
    "thresholds": {"low": 0.3, "high": 0.8},
    "cross_validation": {
        "auc": 0.9,
        "folds": [{"fold": 1, "roc_auc": 0.9, "n_test": 40}],
        "out_of_fold": {"labels": [0, 1], "scores": [0.2, 0.7]},
    },
    "input_spec": {"height": 64, "width": 96},
}


def test_a_card_gives_thresholds_metrics_and_input_size():
    card = model_card_from(GOOD, where="test")
    assert (card.version, card.thresholds.low, card.thresholds.high) == ("v7", 0.3, 0.8)
    assert card_metrics(card) == {"auc": 0.9, "scheme": ""}  # per-fold, per-clip detail left out
    assert (card.input_spec.height, card.input_spec.width) == (64, 96)
    assert not card.is_cascade  # a schema-1 card, as old ModelVersion rows hold


def test_the_shipped_cascade_card_reads_as_one_typed_card():
    card = read_model_card(settings.DEFAULT_MODEL_DIR)
    assert card.is_cascade and card.gate is not None and card.fusion is not None
    assert 0 < card.thresholds.low < card.thresholds.high < 1


@pytest.mark.parametrize(
    "bad",
    [
        [],
        "card",
        {},
        {"version": "v"},
        {"version": "v", "thresholds": {"low": "x", "high": 1}},
        {"version": "v", "thresholds": None},
        {"version": "v", "thresholds": {"low": 0.3, "high": 0.8}, "input_spec": "64x64"},
        {"version": "v", "schema": 2, "thresholds": {"low": 0.3, "high": 0.8}, "input_spec": {}},
    ],
)
def test_a_malformed_card_names_where_it_came_from(bad):
    with pytest.raises(ValidationError, match="somewhere"):
        model_card_from(bad, where="somewhere")


def test_an_unreadable_card_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValidationError, match="not a readable model card"):
        read_model_card(tmp_path)  # missing
    (tmp_path / "model_card.json").write_text("{truncated", encoding="utf-8")
    with pytest.raises(ValidationError, match="not a readable model card"):
        read_model_card(tmp_path)
    (tmp_path / "model_card.json").write_text(json.dumps(GOOD), encoding="utf-8")
    assert read_model_card(tmp_path).version == "v7"
