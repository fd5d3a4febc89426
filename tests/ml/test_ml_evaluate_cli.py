from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
