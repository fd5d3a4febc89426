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
