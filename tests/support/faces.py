"""A real face on video, for the tests of blurring and mosaicking (working and take-out copies)."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from skimage import data


def face_clip_bytes(frames: int = 8) -> bytes:
    """`frames` frames at that rate (one second) of a real photograph with a face (shipped
    with scikit-image), as H.264 MP4."""
    image = data.astronaut()
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as output:
        stream = output.add_stream("libx264", rate=frames)
        stream.width, stream.height = image.shape[1], image.shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18"}
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, frames)
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()


def first_frame(source: Path | bytes) -> np.ndarray:
    """The first decoded frame, as signed integers so differences do not wrap."""
    handle = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    with av.open(handle, mode="r") as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
