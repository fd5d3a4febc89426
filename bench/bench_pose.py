"""Cost of the pose stage (stage 2) per window on this CPU.

    python -m bench.bench_pose [--clip FILE] [--fps 7.5] [--window 1.6] [--threads 1 2]
                               [--tiles 1 2] [--seconds 5]

A window of ``window`` seconds at ``fps`` holds ``round(window * fps)`` frames: stage 2 runs
pose on each of them, then the window's features and the logistic model. Measures ms per
frame of the pose model (letterbox + TFLite + decoding of its output) one frame per call and a
window's frames per call, on 1 and 2 interpreter threads, whole frames and tiled (``tiles``
2: the whole frame and two overlapping halves, 3 model runs per frame), the features' ms per
window, and so ms per window. Frames are the first decoded frames of a real clip (the fixture
clip by default), so the letterbox works on a real frame size. Prints the CPU model and its vector
flags, a table, and one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from ml.pose import PoseEstimator
from ml.pose_features import VIEW_FEATURE_NAMES, window_view_features
from ml.pose_stage import PoseStage
from ml.video import decode_frames

FIXTURE_CLIP = (
    Path(__file__).resolve().parent.parent / "tests/fixtures/surveillance-fight/fight/fi135.mp4"
)


def cpu_description() -> dict[str, Any]:
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name") and model in ("unknown", "", "x86_64"):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    vector = sorted(f for f in flags if f.startswith(("avx", "fma", "sse4")))
    return {
        "model": model,
        "cores": os.cpu_count(),
        "vector_flags": vector,
        "avx512": any(f.startswith("avx512") for f in flags),
    }


CPU_SECONDS: dict[str, float] = {}


def time_calls(function, seconds: float, min_calls: int = 3, label: str = "") -> float:
    """Median wall seconds per call over at least ``min_calls`` calls and ``seconds``.

    The process's CPU seconds per call are kept in ``CPU_SECONDS[label]`` too: on a machine
    shared with other jobs the wall time grows with their load, the CPU time much less.
    """
    durations: list[float] = []
    started = time.perf_counter()
    cpu_started = time.process_time()
    while len(durations) < min_calls or time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        function()
        durations.append(time.perf_counter() - t0)
    if label:
        CPU_SECONDS[label] = (time.process_time() - cpu_started) / len(durations)
    return float(np.median(durations))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", type=Path, default=FIXTURE_CLIP)
    parser.add_argument("--fps", type=float, default=7.5)
    parser.add_argument("--window", type=float, default=1.6, help="window seconds")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tiles", type=int, nargs="+", default=[1, 2], help="1, 2 or 4")
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    args = parser.parse_args(argv)

    frames_per_window = max(2, round(args.window * args.fps))
    frames = decode_frames(args.clip, fps=args.fps)
    while len(frames) < frames_per_window:
        frames = frames + frames
    window = frames[:frames_per_window]
    cpu = cpu_description()
    print(f"CPU: {cpu['model']} ({cpu['cores']} cores), flags {' '.join(cpu['vector_flags'])}")
    print(
        f"window: {args.window} s at {args.fps} fps = {frames_per_window} frames of "
        f"{window[0].shape[1]}x{window[0].shape[0]}"
    )

    results: dict[str, dict[str, float]] = {}
    views = None
    for tiles in args.tiles:
        for threads in args.threads:
            estimator = PoseEstimator.load(threads=threads, tiles=tiles)
            estimator.estimate(window[:1])  # warm the interpreter
            single = time_calls(lambda e=estimator: e.estimate(window[:1]), args.seconds)
            batched = time_calls(
                lambda e=estimator: e.estimate(window), args.seconds, label="batched"
            )
            if tiles == args.tiles[-1]:
                views = estimator.estimate_views(window)
            key = f"{threads}_thread" + ("" if tiles == 1 else f"_tiles{tiles}")
            results[key] = {
                "pose_ms_per_frame_batch1": round(single * 1000, 2),
                "pose_ms_per_frame_batched": round(batched * 1000 / len(window), 2),
                "pose_cpu_ms_per_frame_batched": round(
                    CPU_SECONDS["batched"] * 1000 / len(window), 2
                ),
            }
    assert views is not None
    whole, tiled = views
    # The chosen design's features: both views of the window side by side.
    features_s = time_calls(
        lambda: window_view_features(whole, tiled, args.fps), args.seconds / 2, label="features"
    )
    rng = np.random.default_rng(0)
    stage = PoseStage().fit(rng.gamma(2, 1, (64, len(VIEW_FEATURE_NAMES))), np.arange(64) % 2)
    vector = window_view_features(whole, tiled, args.fps)[None]
    model_s = time_calls(lambda: stage.predict(vector), args.seconds / 4)
    for key, row in results.items():
        row["features_ms_per_window"] = round(features_s * 1000, 2)
        row["features_cpu_ms_per_window"] = round(CPU_SECONDS["features"] * 1000, 2)
        row["model_ms_per_window"] = round(model_s * 1000, 3)
        row["stage2_ms_per_window_batch1"] = round(
            row["pose_ms_per_frame_batch1"] * frames_per_window + (features_s + model_s) * 1000, 1
        )
        row["stage2_ms_per_window_batched"] = round(
            row["pose_ms_per_frame_batched"] * frames_per_window + (features_s + model_s) * 1000, 1
        )
        print(
            f"{key:>16}: pose {row['pose_ms_per_frame_batch1']:.1f} ms/frame at batch 1, "
            f"{row['pose_ms_per_frame_batched']:.1f} batched; features "
            f"{row['features_ms_per_window']:.1f} ms; stage 2 "
            f"{row['stage2_ms_per_window_batch1']:.0f} / {row['stage2_ms_per_window_batched']:.0f} "
            f"ms per window (CPU: pose {row['pose_cpu_ms_per_frame_batched']:.1f} ms/frame, "
            f"features {row['features_cpu_ms_per_window']:.1f} ms)"
        )
    summary = {
        "cpu": cpu,
        "clip": args.clip.name,
        "fps": args.fps,
        "window_seconds": args.window,
        "frames_per_window": frames_per_window,
        "frame_size": [int(window[0].shape[1]), int(window[0].shape[0])],
        "people_in_window": [len(p) for p in tiled],
        "load_average": list(os.getloadavg()),
        **results,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
