"""A real clip with a face in it, for the camera wall's tests."""

from __future__ import annotations

from tests.support import faces


def face_clip_bytes() -> bytes:
    """Four frames of scikit-image's astronaut photograph (a real face), as H.264 MP4."""
    return faces.face_clip_bytes(frames=4)
