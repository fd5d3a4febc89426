from __future__ import annotations

import numpy as np
import pytest

from ml.metrics import choose_decision_threshold, choose_thresholds, classification_report


def test_thresholds_separate_perfectly_separable_scores():
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9])
    chosen = choose_thresholds(labels, scores)
    assert 0.3 < chosen["high"] < 0.6
    assert chosen["low"] <= chosen["high"]
    assert classification_report(labels, scores, chosen["high"])["accuracy"] == 1.0


def test_high_threshold_reports_to_police_only_when_precise():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 200)
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.15), 0, 1)
    chosen = choose_thresholds(labels, scores, min_precision=0.9)
    flagged = scores >= chosen["high"]
    assert float(labels[flagged].mean()) >= 0.9
    # The lowest such cut: one step lower would be less precise or flag nothing new.
    assert chosen["precision_at_high"] >= 0.9
    assert chosen["low"] < chosen["high"]


def test_unreachable_precision_falls_back_to_the_most_precise_cut():
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
    scores = np.linspace(0.1, 0.9, 10)[::-1]  # every fight scores below a calm clip
    chosen = choose_thresholds(labels, scores, min_precision=0.99)
    assert "not reached" in chosen["method"]
    assert 0.0 <= chosen["low"] <= chosen["high"] <= 1.0


def test_precision_of_a_few_top_clips_does_not_set_the_police_cut():
    # One fight scores highest, then calm and violent clips alternate: 100 % precision is only
    # "reached" on that single clip, which flags 1 % of fights.
    labels = np.array([1] + [0, 1] * 99 + [0])
    scores = np.linspace(1.0, 0.0, len(labels))
    chosen = choose_thresholds(labels, scores, min_precision=0.9, min_violent_recall=0.1)
    assert "not reached" in chosen["method"]
    assert chosen["recall_at_high"] >= 0.1
    # Among the cuts that flag at least 10 % of fights it is the most precise one.
    assert chosen["precision_at_high"] == pytest.approx(11 / 21, abs=0.03)


def test_low_threshold_keeps_the_requested_recall():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 100)
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.15), 0, 1)
    chosen = choose_thresholds(labels, scores, min_recall=0.95)
    recall_at_low = float((scores[labels == 1] >= chosen["low"]).mean())
    assert recall_at_low >= 0.95
    assert chosen["low"] < chosen["high"]


def test_report_counts_and_metrics():
    labels = np.array([0, 0, 1, 1])
    scores = np.array([0.2, 0.8, 0.7, 0.4])
    report = classification_report(labels, scores, 0.5)
    matrix = report["confusion_matrix"]
    assert (matrix["tn"], matrix["fp"], matrix["fn"], matrix["tp"]) == (1, 1, 1, 1)
    assert report["accuracy"] == 0.5 and report["precision"] == 0.5 and report["recall"] == 0.5
    assert report["roc_auc"] == 0.5
    assert report["n"] == 4


def test_decision_cut_balances_both_classes_where_the_police_cut_does_not():
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1], 200)
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.15), 0, 1)
    chosen = choose_thresholds(labels, scores, min_precision=0.95)
    at_decision = classification_report(labels, scores, chosen["decision"])
    at_high = classification_report(labels, scores, chosen["high"])
    # The police cut is precise but misses most fights; the yes/no cut sits between the classes.
    assert 0.4 < chosen["decision"] < 0.6
    assert at_decision["accuracy"] > at_high["accuracy"]
    assert at_decision["recall"] > at_high["recall"]


def test_decision_cut_ignores_class_imbalance_and_degenerate_labels():
    labels = np.array([0] * 9 + [1])
    scores = np.array([0.1] * 8 + [0.55, 0.6])
    # Any cut in (0.55, 0.6] separates the classes perfectly.
    assert 0.55 < choose_decision_threshold(labels, scores) <= 0.6
    assert choose_decision_threshold(np.zeros(4), np.linspace(0, 1, 4)) == 0.5


def test_report_of_no_clips_is_empty_not_an_error():
    report = classification_report(np.zeros(0, dtype=int), np.zeros(0), 0.5)
    assert report["n"] == 0 and np.isnan(report["accuracy"]) and np.isnan(report["f1"])
    assert report["confusion_matrix"]["rows_true_cols_predicted"] == [[0, 0], [0, 0]]
