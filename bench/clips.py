"""Test and bench footage made from the fixture clips with PyAV (no system ffmpeg).

python -m bench.clips OUT.mp4 --size 320x180   # the fixture clips as one camera's stream
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "surveillance-fight"


def parse_size(text: str) -> tuple[int, int]:
    """`WIDTHxHEIGHT` as (width, height); H.264 in 4:2:0 needs both even."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if match is None:
        raise ValueError(f"a size is WIDTHxHEIGHT, as in 320x180, not {text!r}")
    width, height = int(match[1]), int(match[2])
    if not (16 <= width <= 7680 and 16 <= height <= 4320) or width % 2 or height % 2:
        raise ValueError(f"{text!r}: width and height must be even, 16-7680 x 16-4320")
    return width, height


def fixture_clips() -> list[Path]:
    return sorted(FIXTURES.glob("*/*.mp4"))


def encode_clip(
    sources: Sequence[Path],
    target: Path,
    *,
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    gop: int = 25,
    repeat: int = 1,
) -> Path:
    """Re-encode clips, one after another, as one constant-rate H.264 MP4 without B-frames.

    A camera's stream looks like this: fixed size and rate, a keyframe every `gop` frames.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(target), mode="w", options={"movflags": "+faststart"}) as output:
        stream = output.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "bf": "0", "g": str(gop), "keyint_min": str(gop)}
        index = 0
        for _ in range(repeat):
            for source in sources:
                with av.open(str(source)) as container:
                    video = container.streams.video[0]
                    time_base = video.time_base or Fraction(1, 1000)
                    first = None
                    next_tick = 0.0
                    for frame in container.decode(video):
                        seconds = float((frame.pts or 0) * time_base)
                        first = seconds if first is None else first
                        # Resample by timestamp so 10-30 fps sources all play at `fps`.
                        while seconds - first + 1e-6 >= next_tick:
                            image = frame.reformat(width=width, height=height, format="yuv420p")
                            image.pts = index
                            image.time_base = Fraction(1, fps)
                            index += 1
                            next_tick += 1.0 / fps
                            for packet in stream.encode(image):
                                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", type=Path)
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT (default 640x360)")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=1, help="play the clips this many times")
    args = parser.parse_args(argv)
    try:
        width, height = parse_size(args.size)
    except ValueError as error:
        parser.error(str(error))
    if args.fps < 1 or args.repeat < 1:
        parser.error("--fps and --repeat are at least 1")
    encode_clip(
        fixture_clips(), args.target, width=width, height=height, fps=args.fps, repeat=args.repeat
    )
    print(args.target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
