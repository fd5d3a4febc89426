"""The apps read a model card through one function, and a bad card is a clear error."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

from detection.model_versions import model_card_from, read_model_card

GOOD = {
    "version": "v7",
    "thresholds": {"low": 0.3, "high": 0.8},
    "cross_validation": {"auc": 0.9, "folds": [1, 2]},
    "input_spec": {"height": 64, "width": 96},
}


def test_a_card_gives_thresholds_metrics_and_input_size():
    card = model_card_from(GOOD, where="test")
    assert (card.version, card.low_threshold, card.high_threshold) == ("v7", 0.3, 0.8)
    assert card.metrics == {"auc": 0.9}  # per-fold detail left out
    assert (card.input_height, card.input_width) == (64, 96)


@pytest.mark.parametrize(
    "bad",
    [
        [],
        "card",
        {},
        {"version": "v"},
        {"version": "v", "thresholds": {"low": "x", "high": 1}},
        {"version": "v", "thresholds": None},
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
