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


def clip_seconds(path: Path) -> float:
    """A video file's duration from its container (0 when the container does not say)."""
    with av.open(str(path)) as container:
        return float(container.duration or 0) / av.time_base


def encode_clip(
    sources: Sequence[Path],
    target: Path,
    *,
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    gop: int = 25,
    repeat: int = 1,
    preset: str = "ultrafast",
) -> Path:
    """Re-encode clips, one after another, as one constant-rate H.264 MP4 without B-frames.

    A camera's stream looks like this: fixed size and rate, a keyframe every `gop` frames.
    `preset`: x264's; "ultrafast" turns the deblocking filter off, slower presets (as camera
    encoders) keep it on, which is what decoder options such as skip_loop_filter act on.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(target), mode="w", options={"movflags": "+faststart"}) as output:
        stream = output.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": preset, "bf": "0", "g": str(gop), "keyint_min": str(gop)}
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


def encode_still_clip(
    target: Path,
    *,
    seconds: float = 20.0,
    noise: float = 2.0,
    background: Path | None = None,
    then: Sequence[Path] = (),
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    gop: int = 25,
    seed: int = 0,
) -> Path:
    """A still scene with sensor noise, encoded as `encode_clip` encodes (same GOP, no
    B-frames), optionally followed by clips (`then`) at the same size and rate.

    The scene is the first frame of `background` (default: the first fixture clip), so it
    looks like a room; each frame adds fresh Gaussian noise of `noise` grey levels (sd), as a
    camera's sensor does, so P-frames are small but never empty.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    with av.open(str(background or fixture_clips()[0])) as container:
        first = next(container.decode(container.streams.video[0]))
        scene = first.reformat(width=width, height=height, format="rgb24").to_ndarray()
    target.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(target), mode="w", options={"movflags": "+faststart"}) as output:
        stream = output.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "bf": "0", "g": str(gop), "keyint_min": str(gop)}
        index = 0

        def put(frame: av.VideoFrame) -> None:
            nonlocal index
            image = frame.reformat(width=width, height=height, format="yuv420p")
            image.pts = index
            image.time_base = Fraction(1, fps)
            index += 1
            for packet in stream.encode(image):
                output.mux(packet)

        for _ in range(round(seconds * fps)):
            noisy = scene + noise * rng.standard_normal(scene.shape, dtype=np.float32)
            put(av.VideoFrame.from_ndarray(np.clip(noisy, 0, 255).astype(np.uint8), "rgb24"))
        for source in then:
            with av.open(str(source)) as container:
                video = container.streams.video[0]
                time_base = video.time_base or Fraction(1, 1000)
                first_seconds = None
                next_tick = 0.0
                for frame in container.decode(video):
                    at = float((frame.pts or 0) * time_base)
                    first_seconds = at if first_seconds is None else first_seconds
                    while at - first_seconds + 1e-6 >= next_tick:
                        put(frame)
                        next_tick += 1.0 / fps
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
