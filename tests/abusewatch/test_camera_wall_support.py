"""A real clip with a face in it, for the camera wall's tests."""

from __future__ import annotations

import io
from fractions import Fraction

import av
from skimage import data


def face_clip_bytes() -> bytes:
    """Four frames of scikit-image's astronaut photograph (a real face), as H.264 MP4."""
    image = data.astronaut()
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as output:
        stream = output.add_stream("libx264", rate=4)
        stream.width, stream.height = image.shape[1], image.shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18"}
        for index in range(4):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, 4)
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()
