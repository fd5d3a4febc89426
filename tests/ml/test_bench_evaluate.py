from __future__ import annotations

import json

from bench.bench_evaluate import main


def test_bench_evaluate_reports_memory_and_time_of_a_long_clip(capsys):
    assert main(["--minutes", "0.3", "--size", "320x180", "--fps", "10"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["clip_size"] == "320x180" and summary["clip_fps"] == 10
    # The fixture clips repeat until about 18 s; each pass lasts a few seconds.
    assert 9 <= summary["clip_seconds"] <= 30
    assert summary["evaluate_peak_rss_mb"] > 100  # TensorFlow alone is several hundred MB
    assert 0.0 <= summary["score"] <= 1.0
    from ml.model_card import ModelCard
    from ml.runtime import default_model_dir

    assert summary["model_version"] == ModelCard.load(default_model_dir()).version
