"""Speed and cost of the shipped detector (the CNN + pose cascade) on this CPU.

    python -m bench.bench_model [--model ARTIFACT_DIR] [--batch 64] [--seconds 5]
                                [--data /work/shared/datasets/surveillance-fight]

Measures:
- stage 1 (the CNN) forward pass: windows/s and ms/window at batch 1 and at ``--batch``;
- stage 2 (pose) ms per gated window: the card's design on a real 1.6 s window of full-size
  frames decoded at the stage-2 fps (7.5 fps: 12 frames, each run whole + 2 tiles = 3 pose
  passes), both views' features and the pose classifier;
- the gate's pass rate on non-violent clips: out of fold (from the card) and, with ``--data``,
  the shipped stage 1 on that folder's non-violent clips (in-sample for the training set);
- the cascade's windows/s at batch 1 and batched, projected from the two stages' costs at the
  gate's non-violent pass rate (live footage is almost all calm), and measured end to end
  (``score_windows``) on real windows of the fixture clips;
- preprocessing of one window from decoded full-size frames, peak RSS, the CPU model and flags.
Prints a table and, as the last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from abusewatch.heap import keep_freed_heap
from ml.runtime import CascadeDetector, default_model_dir

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "surveillance-fight"


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_description() -> dict[str, Any]:
    """CPU model and the vector extensions that decide TensorFlow's and XNNPACK's speed."""
    model, flags = "unknown", set[str]()
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
        model = found.group(1).strip() if found else model
        found = re.search(r"^flags\s*:\s*(.+)$", text, re.MULTILINE)
        flags = set(found.group(1).split()) if found else flags
    except OSError:
        pass
    return {
        "model": model,
        "cores": len(os.sched_getaffinity(0)),
        "avx2": "avx2" in flags,
        "avx512": sorted(f for f in flags if f.startswith("avx512")),
    }


def time_calls(function, seconds: float, min_calls: int = 5) -> tuple[float, int]:
    """Median seconds per call over at least ``min_calls`` calls and ``seconds`` of wall time."""
    durations: list[float] = []
    started = time.perf_counter()
    while len(durations) < min_calls or time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        function()
        durations.append(time.perf_counter() - t0)
    return float(np.median(durations)), len(durations)


def fixture_windows(
    detector: CascadeDetector,
) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]]]:
    """The first window of each fixture clip twice: full-size frames at the analysis rate (stage
    1) and full-size frames of the same span decoded at the card's stage-2 rate (stage 2)."""
    from ml.video import decode_frames

    length = detector.spec.window_frames
    pose_fps = detector.stage2_fps or detector.spec.fps
    pose_length = max(2, round(detector.spec.window_seconds * pose_fps))
    windows, pose_windows = [], []
    for clip in sorted(FIXTURES.glob("*/*.mp4")):
        frames = decode_frames(clip, fps=detector.spec.fps)
        if len(frames) >= length:
            windows.append(frames[:length])
            pose_windows.append(decode_frames(clip, fps=pose_fps)[:pose_length])
    return windows, pose_windows


def gate_pass_rate_on(folder: Path, detector: CascadeDetector) -> dict[str, Any]:
    """Share of a folder's non-violent (and violent) clips whose stage-1 clip score passes."""
    from ml.cache import cached_clip
    from ml.datasets import scan_dataset
    from ml.runtime import mean_window_score

    passes: dict[int, list[bool]] = {0: [], 1: []}
    for record in scan_dataset(folder).records:
        frames = cached_clip(record.path, detector.spec)
        score = mean_window_score(detector.stage1.predict, frames, detector.spec)
        passes[record.label].append(bool(detector.gate_passes([score])[0]))
    return {
        "folder": str(folder),
        "non_violent": round(float(np.mean(passes[0])), 4) if passes[0] else None,
        "violent": round(float(np.mean(passes[1])), 4) if passes[1] else None,
        "clips": len(passes[0]) + len(passes[1]),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=default_model_dir())
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--source-size", default="1280x720", help="decoded frame size, WxH")
    parser.add_argument("--pose-threads", type=int, default=1)
    parser.add_argument(
        "--data", type=Path, default=None, help="measure the gate on this folder's clips"
    )
    parser.add_argument(
        "--default-heap",
        action="store_true",
        help="leave glibc's heap thresholds as they are (the workers keep freed memory: "
        "abusewatch.heap); to measure what that setting saves",
    )
    args = parser.parse_args(argv)
    # As the inference worker runs (abusewatch.celery sets it at worker_init).
    heap_kept = False if args.default_heap else keep_freed_heap()

    rss_before_load = peak_rss_mb()
    load_started = time.perf_counter()
    detector = CascadeDetector.load(args.model, pose_threads=args.pose_threads)
    load_seconds = time.perf_counter() - load_started
    spec = detector.spec
    card = detector.card
    rng = np.random.default_rng(0)
    cpu = cpu_description()

    stage1 = {}
    for batch in (1, args.batch):
        windows = rng.standard_normal((batch, *spec.shape)).astype(np.float32) * 0.3
        for _ in range(3):  # trace and warm up caches
            detector.stage1.predict(windows)
        faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        per_call, calls = time_calls(lambda w=windows: detector.stage1.predict(w), args.seconds)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
        stage1[batch] = {
            "page_faults_per_batch": faults / max(1, calls),
            "ms_per_batch": per_call * 1000,
            "ms_per_window": per_call * 1000 / batch,
            "windows_per_s": batch / per_call,
            "calls": calls,
        }

    width, height = (int(v) for v in args.source_size.lower().split("x"))
    frames = [
        rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(spec.window_frames)
    ]
    preprocess_s, _ = time_calls(lambda: detector.stage1.preprocess(frames), min(args.seconds, 3.0))
    # What the worker does with a camera's window: the reader already made model-size frames.
    model_size = np.ascontiguousarray(
        np.stack([frame[:: height // spec.height, :: width // spec.width] for frame in frames])[
            :, : spec.height, : spec.width
        ]
    )
    preprocess_small_s, _ = time_calls(
        lambda: detector.stage1.preprocess(model_size), min(args.seconds, 3.0)
    )

    real_windows, real_pose_windows = fixture_windows(detector)
    summary: dict[str, object] = {
        "model_version": detector.version,
        "cpu": cpu,
        "input_shape": list(spec.shape),
        "cores": cpu["cores"],
        "batch1_windows_per_s": round(stage1[1]["windows_per_s"], 1),
        "batch1_ms_per_window": round(stage1[1]["ms_per_window"], 3),
        "batch_n": args.batch,
        "batch_n_windows_per_s": round(stage1[args.batch]["windows_per_s"], 1),
        "batch_n_ms_per_window": round(stage1[args.batch]["ms_per_window"], 3),
        "batch_n_page_faults": round(stage1[args.batch]["page_faults_per_batch"], 1),
        "preprocess_ms_per_window": round(preprocess_s * 1000, 3),
        "preprocess_source": f"{spec.window_frames} frames {width}x{height}",
        "preprocess_model_size_ms_per_window": round(preprocess_small_s * 1000, 3),
        "heap_kept": heap_kept,
        "load_ms": round(load_seconds * 1000, 1),
    }
    table = [
        ("model", f"{detector.version} ({args.model})"),
        (
            "cpu",
            f"{cpu['model']}, {cpu['cores']} cores, AVX2 {cpu['avx2']}, "
            f"AVX-512 {', '.join(cpu['avx512']) or 'none'}",
        ),
        ("load time", f"{load_seconds * 1000:.0f} ms"),
    ]
    for batch, numbers in stage1.items():
        table.append(
            (
                f"stage 1, batch {batch}",
                f"{numbers['windows_per_s']:8.1f} windows/s  "
                f"{numbers['ms_per_window']:7.2f} ms/window  "
                f"({numbers['ms_per_batch']:.1f} ms/batch, {numbers['calls']} calls, "
                f"{numbers['page_faults_per_batch']:.0f} page faults/batch)",
            )
        )
    table.append(
        (
            "preprocess 1 window",
            f"{preprocess_s * 1000:.2f} ms from {spec.window_frames} frames of {width}x{height}, "
            f"{preprocess_small_s * 1000:.2f} ms from model-size frames "
            f"(heap {'kept' if heap_kept else 'default'})",
        )
    )

    if detector.stage2 is not None and card.gate is not None and real_windows:
        stage2 = detector.stage2
        window = real_pose_windows[0]
        for _ in range(2):
            stage2.score([window])
        stage2_s, calls = time_calls(lambda: stage2.score([window]), args.seconds)
        pass_rate = card.gate.pass_rate_non_violent
        summary.update(
            {
                "stage2_ms_per_window": round(stage2_s * 1000, 2),
                "stage2_frames_per_window": len(window),
                "stage2_fps": stage2.fps,
                "stage2_frame_size": f"{window[0].shape[1]}x{window[0].shape[0]}",
                "pose_threads": args.pose_threads,
                "gate_cut": card.gate.cut,
                "gate_pass_rate_out_of_fold": {
                    "non_violent": card.gate.pass_rate_non_violent,
                    "violent": card.gate.pass_rate_violent,
                },
            }
        )
        table.append(
            (
                "stage 2, 1 window",
                f"{stage2_s * 1000:8.1f} ms/window  ({len(window)} frames at {stage2.fps:g} fps "
                f"of {window[0].shape[1]}x{window[0].shape[0]}, whole + tiles, {calls} calls)",
            )
        )
        table.append(
            (
                "gate (out of fold)",
                f"cut {card.gate.cut:.3f}: passes {pass_rate:.0%} of non-violent and "
                f"{card.gate.pass_rate_violent:.0%} of violent clips",
            )
        )
        if args.data is not None:
            measured = gate_pass_rate_on(args.data, detector)
            summary["gate_pass_rate_on_data"] = measured
            table.append(
                (
                    "gate (on --data)",
                    f"passes {measured['non_violent']:.0%} of non-violent and "
                    f"{measured['violent']:.0%} of violent clips of {args.data} (in-sample "
                    "if it is the training set)",
                )
            )
            pass_rate = float(measured["non_violent"] or pass_rate)
        # Stage 2 runs one window at a time; on calm footage a share pass_rate of windows
        # reaches it, so a window costs stage 1 plus that share of stage 2.
        for batch in (1, args.batch):
            cost = stage1[batch]["ms_per_window"] + pass_rate * stage2_s * 1000
            summary[f"cascade_projected_batch{'1' if batch == 1 else '_n'}_windows_per_s"] = round(
                1000.0 / cost, 1
            )
            table.append(
                (
                    f"cascade, batch {batch}",
                    f"{1000.0 / cost:8.1f} windows/s projected at a {pass_rate:.0%} pass rate",
                )
            )
        small = [[f for f in w] for w in real_windows]
        stage1_scores = detector.score_stage1(small)
        passed = int(detector.gate_passes(stage1_scores).sum())
        for label, chunk in (("1", 1), ("_n", len(small))):

            def run(chunk=chunk):
                for start in range(0, len(small), chunk):
                    detector.score_windows(
                        small[start : start + chunk],
                        pose_windows=real_pose_windows[start : start + chunk],
                    )

            run()
            seconds, _ = time_calls(run, min(args.seconds, 10.0), min_calls=2)
            summary[f"cascade_measured_batch{label}_windows_per_s"] = round(len(small) / seconds, 1)
            table.append(
                (
                    f"cascade measured, batch {chunk}",
                    f"{len(small) / seconds:8.1f} windows/s on {len(small)} fixture windows "
                    f"({passed} pass the gate)",
                )
            )
        summary["cascade_measured_windows_passing_gate"] = f"{passed}/{len(small)}"

    summary["peak_rss_mb"] = round(peak_rss_mb(), 1)
    table.append(
        ("peak RSS", f"{peak_rss_mb():.0f} MB (before model load {rss_before_load:.0f} MB)")
    )
    label_width = max(len(name) for name, _ in table)
    for name, value in table:
        print(f"{name:<{label_width}}  {value}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
