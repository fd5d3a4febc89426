"""Memory and time of `python -m ml.evaluate` on one long, high-resolution clip.

    python -m bench.bench_evaluate [--minutes 2] [--size 1280x720] [--fps 15]

Re-encodes the fixture clips, one after another and repeated, into one H.264 clip of about
`--minutes` at `--size` and `--fps` (a long recording, as a held-out set may hold), runs the
evaluate command on a folder holding just that clip, and reports its wall time and the peak
resident memory of the evaluate process. Prints a table and, as the last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.clips import clip_seconds, encode_clip, fixture_clips

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--size", default="1280x720", help="clip frame size, WxH")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--model", type=Path, default=None, help="artifact folder")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    sources = fixture_clips()
    with tempfile.TemporaryDirectory(prefix="bench-evaluate-") as temp:
        folder = Path(temp) / "data"
        # One pass over the fixtures tells how many repeats reach the wanted length.
        probe = encode_clip(sources, Path(temp) / "probe.mp4", width=64, height=64, fps=args.fps)
        repeat = max(1, round(args.minutes * 60 / clip_seconds(probe)))
        clip = encode_clip(
            sources,
            folder / "fight" / "long.mp4",
            width=width,
            height=height,
            fps=args.fps,
            gop=args.fps * 2,
            repeat=repeat,
        )
        seconds_of_video = clip_seconds(clip)
        command = [sys.executable, "-m", "ml.evaluate", "--data", str(folder), "--no-progress"]
        if args.model:
            command += ["--model", str(args.model)]
        started = time.perf_counter()
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr)
            return result.returncode
        report = json.loads(result.stdout.strip().splitlines()[-1])
    # ru_maxrss of children is the largest of them in kilobytes on Linux; the evaluate run is
    # the only child this process waited for.
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    summary = {
        "clip_seconds": round(seconds_of_video, 1),
        "clip_size": f"{width}x{height}",
        "clip_fps": args.fps,
        "evaluate_wall_seconds": round(wall, 1),
        "evaluate_peak_rss_mb": round(peak_mb),
        "score": report["clips"][0]["score"],
        "model_version": report["model_version"],
    }
    for name, value in summary.items():
        print(f"{name:<22}  {value}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
