from __future__ import annotations

import json

from bench.bench_pose import main


def test_bench_pose_reports_stage2_cost_per_window_with_the_cpu(capsys):
    # Tiny settings: 3 frames per window, one thread, almost no repetition.
    args = ["--fps", "2", "--window", "1.5", "--threads", "1", "--tiles", "1", "--seconds", "0.01"]
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("CPU: ")
    summary = json.loads(lines[-1])
    assert summary["frames_per_window"] == 3
    row = summary["1_thread"]
    assert row["pose_ms_per_frame_batch1"] > 0 and row["features_ms_per_window"] > 0
    # The window's cost is its frames' pose cost plus features: never less than the frames.
    assert row["stage2_ms_per_window_batched"] >= 3 * row["pose_ms_per_frame_batched"]
    assert len(summary["people_in_window"]) == 3
    assert isinstance(summary["cpu"]["avx512"], bool)
    assert row["pose_cpu_ms_per_frame_batched"] > 0 and len(summary["load_average"]) == 3
