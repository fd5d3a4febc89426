"""What a stage-1 model expects of its windows.

Kept apart from ``ml.preprocess`` (OpenCV, NumPy) so ``ml.model_card`` can be read by the web
process without loading either.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

RESIZE_MODES = ("opencv-area", "ffmpeg-area")


@dataclass(frozen=True)
class InputSpec:
    """What a model expects: ``frames`` time steps of ``height`` x ``width`` x ``channels``.

    ``fps`` and ``window_seconds`` describe the windows the model was trained on: decode at
    ``fps`` and hand ``preprocess`` about ``fps * window_seconds`` frames per window.
    """

    frames: int = 12
    height: int = 64
    width: int = 64
    channels: int = 6
    fps: float = 10.0
    window_seconds: float = 1.6
    # Frame differences are an order of magnitude smaller than pixel values; scaled up they
    # reach the first convolution with a weight comparable to RGB instead of being drowned out.
    diff_scale: float = 4.0
    # "centred": RGB - 0.5. "foreground": RGB minus the window's mean frame, which removes the
    # static scene (the camera's identity) and keeps what moves within the window.
    appearance: str = "foreground"
    # "diff": signed difference to the previous sampled frame (3 channels). "flow": Farneback
    # optical flow to it, dx, dy and magnitude (3 channels). Cards written before this field
    # existed lack it and must keep meaning "diff", which is why that is the default here.
    motion: str = "diff"
    # Flow is in pixels of the model-size frame per sampled step; a fast limb moves a few
    # pixels at 64x64, so a quarter brings typical motion into [-1, 1] before clipping.
    flow_scale: float = 0.25
    # How a decoded frame becomes a model-size RGB frame (``ml.video.model_frame``):
    # "opencv-area": converted to RGB at full size by FFmpeg, then shrunk by OpenCV's area
    # filter (every model up to cascade-b0664416). "ffmpeg-area": shrunk and converted in one
    # FFmpeg (swscale) call with its area filter, never making the full-size RGB frame: a
    # fifth of the cost per frame, and the cost every camera pays for every analysed frame.
    # The two give slightly different pixels, so a model is served the way it was trained:
    # cards without the field mean "opencv-area".
    resize: str = "opencv-area"

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.frames, self.height, self.width, self.channels)

    @property
    def window_frames(self) -> int:
        """Decoded frames per window at ``fps``."""
        return max(2, round(self.fps * self.window_seconds))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        # Cards written before optical flow existed were all trained on frame differences,
        # whatever the dataclass default becomes.
        known.setdefault("motion", "diff")
        known.setdefault("resize", "opencv-area")
        if known["resize"] not in RESIZE_MODES:
            raise ValueError(
                f"unknown resize {known['resize']!r}; one of {', '.join(RESIZE_MODES)}"
            )
        return cls(**known)
