"""Speed and memory of the violence model on this CPU.

    python -m bench.bench_model [--model ARTIFACT_DIR] [--batch 64] [--seconds 5]

Measures the model forward pass (windows/s and ms/window at batch 1 and at a larger batch),
peak resident memory, and, separately, preprocessing of one window from decoded full-size
frames. Prints a table and, as the last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from ml.runtime import ViolenceDetector, default_model_dir


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_calls(function, seconds: float, min_calls: int = 5) -> tuple[float, int]:
    """Median seconds per call over at least ``min_calls`` calls and ``seconds`` of wall time."""
    durations: list[float] = []
    started = time.perf_counter()
    while len(durations) < min_calls or time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        function()
        durations.append(time.perf_counter() - t0)
    return float(np.median(durations)), len(durations)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=default_model_dir())
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--source-size", default="1280x720", help="decoded frame size, WxH")
    args = parser.parse_args(argv)

    rss_before_load = peak_rss_mb()
    load_started = time.perf_counter()
    detector = ViolenceDetector.load(args.model)
    load_seconds = time.perf_counter() - load_started
    spec = detector.spec
    rng = np.random.default_rng(0)

    results = {}
    for batch in (1, args.batch):
        windows = rng.standard_normal((batch, *spec.shape)).astype(np.float32) * 0.3
        for _ in range(3):  # trace and warm up caches
            detector.predict(windows)
        per_call, calls = time_calls(lambda w=windows: detector.predict(w), args.seconds)
        results[batch] = {
            "ms_per_batch": per_call * 1000,
            "ms_per_window": per_call * 1000 / batch,
            "windows_per_s": batch / per_call,
            "calls": calls,
        }

    width, height = (int(v) for v in args.source_size.lower().split("x"))
    frames = [
        rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(spec.window_frames)
    ]
    preprocess_s, _ = time_calls(lambda: detector.preprocess(frames), min(args.seconds, 3.0))

    table = [
        ("model", f"{detector.version} ({args.model})"),
        (
            "input",
            f"{spec.frames} x {spec.height} x {spec.width} x {spec.channels} @ {spec.fps:g} fps",
        ),
        (
            "cpu",
            f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        ),
        ("load time", f"{load_seconds * 1000:.0f} ms"),
    ]
    for batch, numbers in results.items():
        table.append(
            (
                f"forward, batch {batch}",
                f"{numbers['windows_per_s']:8.1f} windows/s  "
                f"{numbers['ms_per_window']:7.2f} ms/window  "
                f"({numbers['ms_per_batch']:.1f} ms/batch, {numbers['calls']} calls)",
            )
        )
    table.append(
        (
            "preprocess 1 window",
            f"{preprocess_s * 1000:.2f} ms from {spec.window_frames} frames of {width}x{height}",
        )
    )
    table.append(
        ("peak RSS", f"{peak_rss_mb():.0f} MB (before model load {rss_before_load:.0f} MB)")
    )
    label_width = max(len(name) for name, _ in table)
    for name, value in table:
        print(f"{name:<{label_width}}  {value}")

    summary = {
        "model_version": detector.version,
        "input_shape": list(spec.shape),
        "cores": len(os.sched_getaffinity(0)),
        "batch1_windows_per_s": round(results[1]["windows_per_s"], 1),
        "batch1_ms_per_window": round(results[1]["ms_per_window"], 3),
        "batch_n": args.batch,
        "batch_n_windows_per_s": round(results[args.batch]["windows_per_s"], 1),
        "batch_n_ms_per_window": round(results[args.batch]["ms_per_window"], 3),
        "preprocess_ms_per_window": round(preprocess_s * 1000, 3),
        "preprocess_source": f"{spec.window_frames} frames {width}x{height}",
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "load_ms": round(load_seconds * 1000, 1),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
