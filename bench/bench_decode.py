"""What a camera reader's decoding costs, per source frame, and what the motion gate saves.

    python -m bench.bench_decode [--repeat 3] [--scores 24]
                                 [--data /work/shared/datasets/surveillance-fight]

Footage: the fixture clips re-encoded as a 640x360 25-fps H.264 camera stream
(`bench.clips.encode_clip`, x264 "ultrafast", which has no deblocking filter) and the same with
x264 "veryfast" (deblocking on, as camera encoders); a still noisy room (`encode_still_clip`).
Measures CPU time (this process, one thread) per source frame of:
- demuxing only; decoding every frame; decoding with libavcodec's skip options
  (`skip_loop_filter=all`, `flags2=+fast`, `skip_idct=all`);
- turning a kept frame (10 of 25 fps) into the model's 64x64 RGB: `to_ndarray("rgb24")` at full
  size + `ml.preprocess.resize_frame` (OpenCV INTER_AREA, today's path, the one training used)
  against `frame.reformat(64, 64, "rgb24", interpolation="AREA")` in FFmpeg;
- the whole reader (`CameraReader.play_once`, unpaced: demux, packet copies, decode, sampling,
  conversion, windows), with and without the motion gate (and once with FFmpeg scaling), as
  CPU seconds per stream second (x 100 = % of a core per camera), and the share of frames the
  gate left undecoded.
With `--scores N`, pixel-changing options are judged on the shipped model: stage 1 (the CNN's
mean window score, as `ml.evaluate` computes it) of N clips of `--data` decoded as `ml.video`
does against decoded with each option; prints the max and mean |delta score|.
Prints a table and, as the last line, one JSON object.

Figures of 2026-11-30 (#14, helper "decode"): "AMD EPYC", 2 cores, AVX2 yes, AVX-512 no,
shared with three other jobs (load average 1.6-4.5 during the runs; CPU times, best of 3, vary
by about +-25 % between runs). CPU ms per source frame of 640x360 25-fps H.264:

| step | x264 ultrafast (no deblocking) | x264 veryfast (deblocking) |
|---|---|---|
| demux | 0.013 | 0.010 |
| decode every frame | 0.27 | 0.35-0.42 |
| decode, skip_loop_filter=all | 0.26-0.31 (no filter to skip) | 0.28-0.41 |
| decode, flags2=+fast / skip_idct=all | no gain measurable | no gain measurable |
| per KEPT frame: to_ndarray + resize_frame (today) | 1.15-1.20 | 0.98-1.10 |
| per KEPT frame: frame.reformat(64, 64, "rgb24", AREA) | 0.16-0.20 | 0.20-0.25 |

On the dataset's own clips (deblocked, mixed sizes) skip_loop_filter took decoding from 1.02
to 0.91 ms a frame (-11 %). Whole reader per 640x360 25-fps camera (unpaced, % of one core):
busy footage 2.2-2.9 % without the gate and 2.9-3.1 % with it (the gate never engages: 100 %
decoded, its own cost within the noise); 1.3 % with FFmpeg scaling; a still noisy room (30 s)
1.9-2.3 % without the gate and 0.6-0.8 % with it, 27 % of its frames decoded: the first 8 s
(2 s of still pixels to learn from, 4 s of hold, to the next window), none after.
The gate and sensor noise (still room, noise sd in grey levels; ultrafast): sd 2 (P-frames
~80 bytes), 60 s: 13 % decoded; sd 4 (~1.1 kB), 30 s: 27 % decoded; sd 8 (~25 kB), 30 s: 100 %
decoded: its 64-px frames differ by more than INGEST_MOTION_GATE_PIXEL_STILL, so the gate never
learns a still level (such windows are above the segment motion gate too, and analysed). A
fight that starts in a still room (its first frame held 10 s with noise sd 2, then the fight
from there: tests/cameras/test_reader_motion_gate.py) was flagged by the first or the fifth
P-frame of the fight, and every window from its start decoded frame for frame as without gate.
Conversion at the analysis rate (10 of 25 frames x ~1.15 ms) is the largest single cost, then
decoding (25 x ~0.27 ms).

Stage 1 of the shipped model, 24 clips of surveillance-fight (12 fights, 12 calm), |score
change| against ml.video's frames: skip_loop_filter max 0.028 / mean 0.005; FFmpeg scaling max
0.041 / mean 0.007; both max 0.043 / mean 0.009 (51 CPU s). Both change pixels that ml.video
and training do not see, and a 0.03-0.04 move can cross a band. Skipping the filter stays a
setting, off (INGEST_SKIP_LOOP_FILTER). FFmpeg scaling became the model's own rule instead
(InputSpec.resize "ffmpeg-area", ml.video.model_frame): training, evaluation and the reader
all shrink frames that way for a model trained so, and a model trained on OpenCV's frames
(card without the field) is still served OpenCV's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import av
import numpy as np

from bench.bench_model import cpu_description
from bench.clips import encode_clip, encode_still_clip, fixture_clips
from ml.frames import FrameSampler
from ml.preprocess import InputSpec
from ml.video import model_frame

ANALYSIS_FPS = 10.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def per_frame_ms(run: Callable[[], int], repeat: int) -> float:
    """Best of `repeat` runs (the box is shared: the least disturbed run), CPU ms per frame."""
    best = float("inf")
    for _ in range(repeat):
        started = cpu_seconds()
        frames = run()
        best = min(best, (cpu_seconds() - started) * 1000 / max(1, frames))
    return best


def demux_only(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)


def decode_all(path: Path, options: dict[str, str] | None = None) -> int:
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        stream.codec_context.thread_count = 1
        if options:
            stream.codec_context.options = options
        for _ in container.decode(stream):
            count += 1
    return count


def kept_frames(path: Path) -> list[Any]:
    """The frames the analysis rate keeps (ml.frames), decoded."""
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        sampler = FrameSampler(ANALYSIS_FPS)
        for frame in container.decode(stream):
            if frame.pts is not None and sampler.slots(float(frame.pts * (stream.time_base or 0))):
                frames.append(frame)
    return frames


def convert(frames: list[Any], spec: InputSpec, resize: str) -> int:
    """Kept frames to model size by one rule ("opencv-area" or "ffmpeg-area")."""
    rule = replace(spec, resize=resize)
    for frame in frames:
        model_frame(frame, rule)
    return len(frames)


def reader_run(path: Path, *, gate: bool, resize: str = "opencv-area") -> dict[str, float]:
    """The whole reader path over the file once; CPU seconds per stream second."""
    from cameras.ingest.decoding import DecodeOptions, IngestTotals
    from cameras.ingest.reader import CameraConfig, CameraReader

    totals = IngestTotals()
    reader = CameraReader(
        CameraConfig(1, str(path), ANALYSIS_FPS, 2.0, 0.0, 64, 64, frame_resize=resize),
        on_window=lambda *_: None,
        on_status=lambda *_: None,
        decode_options=DecodeOptions(motion_gate=gate),
        paced=False,
        totals=totals,
    )
    started = cpu_seconds()
    reader.play_once()
    used = cpu_seconds() - started
    counts = totals.snapshot()
    stream_seconds = counts["packets"] / 25.0
    return {
        "cpu_per_stream_second": used / stream_seconds,
        "core_percent_per_camera": 100 * used / stream_seconds,
        "decoded_share": counts["frames_decoded"] / max(1, counts["packets"]),
        "not_decoded_share": counts["frames_not_decoded"] / max(1, counts["packets"]),
        "windows": counts["windows"],
        "windows_still": counts["windows_still"],
    }


def decode_for_analysis(
    path: Path, spec: InputSpec, *, skip_loop_filter: bool, ffmpeg_scale: bool
) -> list[np.ndarray]:
    """`ml.video.decode_frames(path, fps=spec.fps, spec=...)` with one option: frames shrunk by
    FFmpeg (`ffmpeg_scale`) or OpenCV, whatever `spec.resize` says."""
    rule = replace(spec, resize="ffmpeg-area" if ffmpeg_scale else "opencv-area")
    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if skip_loop_filter:
            stream.codec_context.options = {"skip_loop_filter": "all"}
        sampler = FrameSampler(spec.fps)
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            slots = sampler.slots(float(frame.pts * (stream.time_base or 0)))
            if not slots:
                continue
            image = model_frame(frame, rule)
            frames.extend([image] * len(slots))
    return frames


def score_deltas(data: Path, count: int) -> dict[str, Any]:
    """Stage 1 of `count` clips (half fights) under each pixel-changing option vs ml.video."""
    from ml.runtime import CascadeDetector, default_model_dir, mean_window_score
    from ml.video import decode_frames

    detector = CascadeDetector.load(default_model_dir())
    spec = detector.spec
    fights = sorted((data / "fight").glob("*.mp4"))[: count // 2]
    calm = sorted((data / "noFight").glob("*.mp4"))[: count - len(fights)]
    variants = {
        "skip_loop_filter": {"skip_loop_filter": True, "ffmpeg_scale": False},
        "ffmpeg_scale": {"skip_loop_filter": False, "ffmpeg_scale": True},
        "both": {"skip_loop_filter": True, "ffmpeg_scale": True},
    }
    deltas: dict[str, list[float]] = {name: [] for name in variants}
    decode_ms: dict[str, list[float]] = {"default": [], "skip_loop_filter": []}
    for clip in [*fights, *calm]:
        # Against OpenCV's frames, whatever rule the shipped model was trained on.
        reference = decode_frames(clip, fps=spec.fps, spec=replace(spec, resize="opencv-area"))
        if len(reference) < 2:
            continue
        # The exact copy of ml.video's path must score the same, or the comparison is void.
        same = decode_for_analysis(clip, spec, skip_loop_filter=False, ffmpeg_scale=False)
        assert all(np.array_equal(a, b) for a, b in zip(same, reference, strict=True))
        base = mean_window_score(detector.stage1.predict, reference, spec)
        for name, options in variants.items():
            frames = decode_for_analysis(clip, spec, **options)
            score = mean_window_score(detector.stage1.predict, frames, spec)
            deltas[name].append(abs(score - base))
        decode_ms["default"].append(per_frame_ms(partial(decode_all, clip), 1))
        decode_ms["skip_loop_filter"].append(
            per_frame_ms(partial(decode_all, clip, {"skip_loop_filter": "all"}), 1)
        )
    return {
        "clips": len(deltas["both"]),
        "abs_delta_stage1": {
            name: {"max": max(values), "mean": float(np.mean(values))}
            for name, values in deltas.items()
        },
        "dataset_decode_ms_per_frame": {k: float(np.median(v)) for k, v in decode_ms.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best kept)")
    parser.add_argument("--scores", type=int, default=0, help="clips for the score deltas")
    parser.add_argument(
        "--data", type=Path, default=Path("/work/shared/datasets/surveillance-fight")
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "abusewatch.settings")
    import django

    django.setup()
    spec = InputSpec()
    result: dict[str, Any] = {"cpu": cpu_description(), "load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-decode-") as folder:
        busy = encode_clip(fixture_clips(), Path(folder) / "busy.mp4")
        deblocked = encode_clip(fixture_clips(), Path(folder) / "busy-vf.mp4", preset="veryfast")
        still = encode_still_clip(Path(folder) / "still.mp4", seconds=30)
        per_frame: dict[str, dict[str, float]] = {}
        for name, clip in (("busy_ultrafast", busy), ("busy_veryfast", deblocked)):
            figures = {
                "demux": per_frame_ms(partial(demux_only, clip), args.repeat),
                "decode": per_frame_ms(partial(decode_all, clip), args.repeat),
            }
            options: tuple[tuple[str, dict[str, str]], ...] = (
                ("skip_loop_filter", {"skip_loop_filter": "all"}),
                ("flags2_fast", {"flags2": "+fast"}),
                ("skip_idct", {"skip_idct": "all"}),
            )
            for option, decoder_options in options:
                figures[f"decode_{option}"] = per_frame_ms(
                    partial(decode_all, clip, decoder_options), args.repeat
                )
            kept = kept_frames(clip)
            figures["convert_numpy_per_kept"] = per_frame_ms(
                partial(convert, kept, spec, "opencv-area"), args.repeat
            )
            figures["convert_ffmpeg_per_kept"] = per_frame_ms(
                partial(convert, kept, spec, "ffmpeg-area"), args.repeat
            )
            per_frame[name] = {key: round(value, 4) for key, value in figures.items()}
        result["ms_per_source_frame"] = per_frame
        readers: dict[str, dict[str, float]] = {}
        for name, clip in (("busy", busy), ("still", still)):
            for gate in (False, True):
                runs = [reader_run(clip, gate=gate) for _ in range(args.repeat)]
                best = min(runs, key=lambda run: run["cpu_per_stream_second"])
                readers[f"{name}_gate_{'on' if gate else 'off'}"] = {
                    key: round(value, 4) for key, value in best.items()
                }
        runs = [reader_run(busy, gate=False, resize="ffmpeg-area") for _ in range(args.repeat)]
        best = min(runs, key=lambda run: run["cpu_per_stream_second"])
        readers["busy_gate_off_ffmpeg_scale"] = {k: round(v, 4) for k, v in best.items()}
        result["reader"] = readers
    if args.scores:
        result["scores"] = score_deltas(args.data, args.scores)
    cpu = result["cpu"]
    avx512f = "avx512f" in cpu["avx512"]
    print(f"CPU: {cpu['model']}, {cpu['cores']} cores, avx2={cpu['avx2']}, avx512f={avx512f}")
    print(f"load average: {result['load_average']}")
    for name, clip_figures in per_frame.items():
        print(f"\n{name} (640x360, 25 fps): CPU ms per source frame")
        for key, value in clip_figures.items():
            print(f"  {key:28s} {value:8.4f}")
    print("\nwhole reader (unpaced): % of a core per camera, share of frames decoded")
    for name, figures in readers.items():
        print(
            f"  {name:22s} {figures['core_percent_per_camera']:6.2f} %  "
            f"decoded {figures['decoded_share']:.0%}  still windows "
            f"{figures['windows_still']:.0f}/{figures['windows']:.0f}"
        )
    if "scores" in result:
        scores = result["scores"]
        print(f"\nstage-1 |delta score| over {scores['clips']} clips of {args.data}:")
        for name, delta in scores["abs_delta_stage1"].items():
            print(f"  {name:18s} max {delta['max']:.4f}  mean {delta['mean']:.4f}")
        print(f"  dataset decode ms/frame: {scores['dataset_decode_ms_per_frame']}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
