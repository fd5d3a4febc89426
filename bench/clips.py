"""Test and bench footage made from the fixture clips with PyAV (no system ffmpeg)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "surveillance-fight"


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
