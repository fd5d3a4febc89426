"""One still picture per camera for the centre admins' camera wall (issue #15, Deliver 7).

A frame from the camera's latest stored window, JPEG-encoded once per segment and policy
(faces pixelated or not) and kept beside the footage: refreshing the wall never decodes the
same window twice, and no request parameter shapes what is stored.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from detection.models import Segment, segment_snapshot_name
from reports.redaction import FaceDetector, pixelate

SNAPSHOT_WIDTH = 640
JPEG_QUALITY = 80


class SnapshotUnavailable(Exception):
    """The window has no decodable picture (erased, empty or corrupt footage)."""


def snapshot_name(segment: Segment, *, blur: bool) -> str:
    return segment_snapshot_name(segment, blur=blur)


def _first_frame(segment: Segment) -> np.ndarray[Any, Any]:
    """The window's first picture: from its preview, else from its original."""
    import av

    if segment.status == Segment.Status.PURGED:
        raise SnapshotUnavailable("The footage of this window has been erased.")
    problem = "The footage of this window has been erased."
    for field in (segment.preview, segment.original):
        if not field.name:
            continue
        try:
            with field.open("rb") as handle, av.open(handle, mode="r") as container:
                for frame in container.decode(video=0):
                    return frame.to_ndarray(format="rgb24")
            problem = "The footage of this window has no picture."
        except (OSError, av.error.FFmpegError, ValueError, IndexError) as exc:
            problem = f"The footage of this window cannot be decoded: {exc}"
    raise SnapshotUnavailable(problem)


def encode_jpeg(rgb: np.ndarray[Any, Any]) -> bytes:
    from PIL import Image

    image = Image.fromarray(rgb)
    if image.width > SNAPSHOT_WIDTH:
        height = max(1, round(image.height * SNAPSHOT_WIDTH / image.width))
        image = image.resize((SNAPSHOT_WIDTH, height))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def snapshot_for(segment: Segment, *, blur: bool) -> str:
    """The storage name of the window's still picture, made on first request and then reused.

    Older pictures of the same camera are removed when a newer one is made: only the latest
    is ever shown, and a picture must not outlive its footage's retention by much.
    """
    name = snapshot_name(segment, blur=blur)
    if default_storage.exists(name):
        return name
    rgb = _first_frame(segment)
    if blur:
        rgb = pixelate(rgb, FaceDetector().detect(rgb))
    saved = default_storage.save(name, ContentFile(encode_jpeg(rgb)))
    folder = f"snapshots/camera-{segment.camera_id}"
    try:
        _dirs, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotImplementedError):
        files = []
    keep = {saved.rsplit("/", 1)[-1], snapshot_name(segment, blur=not blur).rsplit("/", 1)[-1]}
    for old in files:
        if old not in keep:
            default_storage.delete(f"{folder}/{old}")
    return saved
