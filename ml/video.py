"""Video decoding shared by training, evaluation and the live workers."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from ml.frames import FrameSampler
from ml.input_spec import InputSpec
from ml.preprocess import resize_frame


class VideoDecodeError(Exception):
    """A file could not be decoded into at least one video frame."""


def model_frame(frame: av.VideoFrame, spec: InputSpec) -> np.ndarray:
    """A decoded frame as the model's RGB uint8 input (``spec.height`` x ``spec.width`` x 3),
    by the model's own rule (``InputSpec.resize``). The one conversion of every path from a
    camera or a file to the model: training (``ml.cache``), ``ml.evaluate``, the camera reader,
    edge uploads and the inference worker's fallback decode.
    """
    if spec.resize == "ffmpeg-area":
        # Scaled and converted in one swscale call: the full-size RGB frame is never made.
        small = _reformatter().reformat(
            frame, width=spec.width, height=spec.height, format="rgb24", interpolation="AREA"
        )
        return np.ascontiguousarray(small.to_ndarray(), dtype=np.uint8)
    return resize_frame(frame.to_ndarray(format="rgb24"), spec)


_local = threading.local()


def _reformatter() -> VideoReformatter:
    """This thread's swscale context. `VideoFrame.reformat` builds a new one for every frame;
    a kept one is rebuilt only when the source size or format changes, which saves about a
    fifth of the conversion of a small frame (every analysis frame of every camera). One per
    thread, because a context is not safe to share."""
    reformatter: VideoReformatter | None = getattr(_local, "reformatter", None)
    if reformatter is None:
        reformatter = _local.reformatter = VideoReformatter()
    return reformatter


def decode_frames(
    path: str | os.PathLike[str],
    *,
    fps: float | None = None,
    max_seconds: float | None = None,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    spec: InputSpec | None = None,
) -> list[np.ndarray]:
    """Decode a video file into RGB uint8 frames (H x W x 3).

    With ``fps`` the frames are resampled in time by presentation timestamp with the one rule
    of ``ml.frames`` (the live reader and edge uploads use it too): one frame per tick of the
    target clock, a slow source's frames repeated, a fast source's dropped, so the output rate
    does not depend on the source rate (12-30 fps cameras all give the same spacing).
    ``transform`` (e.g. a resize to model size) is applied to each frame as it is decoded, so
    a long high-resolution file never holds its full-size frames all at once: two minutes of
    720p at 10 fps are 3.3 GB full size and 15 MB at 64x64. ``spec``: frames at the model's
    size, made by ``model_frame`` (instead of ``transform``).
    Raises VideoDecodeError with the file name on missing, empty, corrupt or non-video input.
    """
    return list(iter_frames(path, fps=fps, max_seconds=max_seconds, transform=transform, spec=spec))


def iter_frames(
    path: str | os.PathLike[str],
    *,
    fps: float | None = None,
    max_seconds: float | None = None,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    spec: InputSpec | None = None,
) -> Iterator[np.ndarray]:
    """``decode_frames`` one frame at a time: whoever consumes them (e.g. the pose model)
    holds one full-size frame, not a whole file's."""
    if transform is not None and spec is not None:
        raise ValueError("pass transform or spec, not both")
    file_path = Path(path)
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not file_path.is_file():
        raise VideoDecodeError(f"{file_path}: no such file")
    if file_path.stat().st_size == 0:
        raise VideoDecodeError(f"{file_path}: empty file")
    produced = 0
    try:
        with av.open(str(file_path), mode="r") as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{file_path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            time_base = stream.time_base or Fraction(1, 1000)
            start_seconds: float | None = None
            sampler = FrameSampler(fps) if fps is not None else None
            fallback_index = 0
            for frame in container.decode(stream):
                if frame.pts is not None:
                    seconds = float(frame.pts * time_base)
                else:
                    # Some containers carry no timestamps; assume the nominal rate.
                    rate = float(stream.average_rate or 25)
                    seconds = fallback_index / rate
                fallback_index += 1
                if start_seconds is None:
                    start_seconds = seconds
                if max_seconds is not None and seconds - start_seconds >= max_seconds:
                    break
                if sampler is None:
                    produced += 1
                    yield _converted(frame, transform, spec)
                    continue
                slots = [
                    slot
                    for slot in sampler.slots(seconds)
                    if max_seconds is None or slot.seconds < max_seconds
                ]
                if slots:
                    image = _converted(frame, transform, spec)
                    for _ in slots:
                        produced += 1
                        yield image
    except VideoDecodeError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, IndexError, RuntimeError) as error:
        if not produced:
            raise VideoDecodeError(f"{file_path}: cannot decode video ({error})") from error
        # A truncated tail still leaves the frames decoded so far usable.
    if not produced:
        raise VideoDecodeError(f"{file_path}: no decodable video frames")


def _converted(
    frame: av.VideoFrame,
    transform: Callable[[np.ndarray], np.ndarray] | None,
    spec: InputSpec | None,
) -> np.ndarray:
    if spec is not None:
        return model_frame(frame, spec)
    image = frame.to_ndarray(format="rgb24")
    return image if transform is None else transform(image)
