from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_evaluate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ml.evaluate", "--no-progress", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_evaluate_cli_prints_metrics_json_last(fixture_dir):
    result = run_evaluate("--data", str(fixture_dir))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for key in (
        "accuracy",
        "roc_auc",
        "f1",
        "precision",
        "recall",
        "n",
        "skipped",
        "confusion_matrix",
    ):
        assert key in report
    assert report["n"] == 8 and report["skipped"] == 0
    matrix = report["confusion_matrix"]
    assert matrix["tn"] + matrix["fp"] + matrix["fn"] + matrix["tp"] == 8
    assert matrix["tp"] + matrix["fn"] == 4
    assert report["accuracy"] == (matrix["tp"] + matrix["tn"]) / 8
    # The verdict uses the card's yes/no cut; the bands' own metrics come alongside.
    bands = report["thresholds"]
    assert report["threshold"] == bands["decision"]
    assert report["at_high"]["threshold"] == bands["high"]
    assert report["at_low"]["threshold"] == bands["low"]
    assert report["at_high"]["n"] == report["at_low"]["n"] == 8
    for value in ("accuracy", "roc_auc", "f1", "precision", "recall"):
        assert 0.0 <= report[value] <= 1.0
    assert len(report["clips"]) == 8


def test_evaluate_cli_reports_bad_folder_clearly(tmp_path):
    result = run_evaluate("--data", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "not a folder" in result.stderr
    result = run_evaluate("--data", str(tmp_path), "--model", str(tmp_path))
    assert result.returncode == 2
    assert "cannot load model" in result.stderr


def test_evaluate_cli_reports_a_folder_of_only_bad_files(tmp_path):
    (tmp_path / "fight").mkdir()
    (tmp_path / "noFight").mkdir()
    (tmp_path / "fight" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\xff" * 500)
    (tmp_path / "noFight" / "empty.mp4").write_bytes(b"")
    result = run_evaluate("--data", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["n"] == 0 and report["skipped"] == 2
    assert report["accuracy"] is None and report["at_high"]["recall"] is None
    assert {Path(s["path"]).name for s in report["skipped_files"]} == {"broken.mp4", "empty.mp4"}


def test_evaluate_cli_writes_per_clip_scores_and_the_plot(fixture_dir, tmp_path):
    import csv

    from ml.model_card import ModelCard

    per_clip, plot = tmp_path / "out" / "clips.csv", tmp_path / "roc.png"
    result = run_evaluate(
        "--data", str(fixture_dir), "--per-clip", str(per_clip), "--plot", str(plot)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    with open(per_clip, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [list(r) for r in rows[:1]] == [["clip", "label", "stage1", "stage2", "fused", "band"]]
    assert len(rows) == 8
    card = ModelCard.load(REPO / "ml" / "artifacts" / "default")
    assert card.gate is not None and card.fusion is not None
    for row in rows:
        stage1, fused = float(row["stage1"]), float(row["fused"])
        # Stage 2 ran exactly where the gate passes, and the fused score is the card's fusion.
        assert (row["stage2"] != "") == card.gate.passes(stage1)
        stage2 = float(row["stage2"]) if row["stage2"] else None
        assert fused == pytest.approx(card.fusion.score(stage1, stage2), abs=2e-5)
        assert row["band"] == card.thresholds.band(fused)
    json_rows = {c["clip"]: c for c in report["clips"]}
    assert {json_rows[r["clip"]]["band"] for r in rows} == {r["band"] for r in rows}
    # The police cut and the expert cut: precision, recall, and where calm clips go.
    for cut in ("at_high", "at_low"):
        assert {"precision", "recall", "non_violent_share_at_or_above"} <= set(report[cut])
    calm = [r for r in rows if r["label"] == "0"]
    in_expert_band = sum(
        card.thresholds.low <= float(r["fused"]) < card.thresholds.high for r in calm
    )
    assert report["non_violent_to_experts"] == pytest.approx(in_expert_band / len(calm))
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
