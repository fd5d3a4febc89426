"""The copy a guardian takes outside the centre: the marked child visible, everyone else not.

The law asks that other children and staff in a copy taken outside the centre be mosaicked
(영유아보육법 제15조의5; 개인정보 보호법 제25조). Which person is the guardian's child cannot be
known automatically, so the admin marks the child's box, and the whole frame outside that box
is mosaicked: other people's faces AND bodies, wherever they stand, and whether or not a
detector would have found them. When person boxes of the pose model are available, narrowing
the mosaic to them would keep the room readable; covering everything outside the child is the
safe default that never misses a bystander.

Each frame also carries a visible watermark (request, time of making, recipient), and the
container's metadata carries the same text, so a leaked copy names where it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Mosaic cells of this many pixels: at 640x360 a face of 40 px becomes a few flat squares.
MOSAIC_CELL_PX = 16
WATERMARK_BAND_PX = 22
ENCODER = {"pix_fmt": "yuv420p", "crf": "23", "preset": "veryfast"}  # libx264
# Fonts that carry Hangul, as Debian ships them (fonts-noto-cjk, fonts-nanum); looked up, never
# downloaded. Without one the watermark falls back to the default Latin font.
CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
)

Box = tuple[float, float, float, float]


class CopyError(Exception):
    """The copy cannot be made; the message says why."""


def validate_child_box(box: Sequence[float]) -> Box:
    if len(box) != 4:
        raise CopyError("The child's box is four numbers: x, y, width, height.")
    x, y, w, h = (float(value) for value in box)
    if not all(np.isfinite([x, y, w, h])):
        raise CopyError("The child's box must be finite numbers.")
    if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 - x and 0 < h <= 1 - y):
        raise CopyError("The child's box must lie inside the frame (fractions from 0 to 1).")
    return (x, y, w, h)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in CJK_FONTS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default()


def mosaic_outside(image: np.ndarray, box: Box, cell: int = MOSAIC_CELL_PX) -> np.ndarray:
    """Every pixel outside `box` replaced by the mean of its cell; the box left as it was."""
    height, width = image.shape[:2]
    rows, cols = max(1, height // cell), max(1, width // cell)
    small = np.asarray(
        Image.fromarray(image).resize((cols, rows), Image.Resampling.BOX), dtype=np.uint8
    )
    mosaic = np.asarray(
        Image.fromarray(small).resize((width, height), Image.Resampling.NEAREST), dtype=np.uint8
    ).copy()
    x0, y0 = int(box[0] * width), int(box[1] * height)
    x1, y1 = round((box[0] + box[2]) * width), round((box[1] + box[3]) * height)
    mosaic[y0:y1, x0:x1] = image[y0:y1, x0:x1]
    return mosaic


def _wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> list[str]:
    """Split at " · " so that each line fits `width` where it can."""
    lines: list[str] = []
    for part in text.split(" · "):
        candidate = f"{lines[-1]} · {part}" if lines else part
        if lines and font.getlength(candidate) <= width:
            lines[-1] = candidate
        else:
            lines.append(part)
    return lines


def burn_watermark(image: np.ndarray, text: str) -> np.ndarray:
    """A dark band along the bottom with the whole watermark text in white, on as many lines
    as the frame's width needs (a cut-off recipient would defeat the watermark)."""
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    width, height = picture.size
    size = max(min(WATERMARK_BAND_PX, height // 4) - 8, 8)
    font = _font(size)
    lines = _wrap(text, font, width - 8)
    line_px = size + 4
    band = min(line_px * len(lines) + 6, height // 2)
    draw.rectangle((0, height - band, width, height), fill=(0, 0, 0))
    for index, line in enumerate(lines):
        draw.text((4, height - band + 3 + index * line_px), line, fill=(255, 255, 255), font=font)
    return np.asarray(picture, dtype=np.uint8)


def make_takeout_copy(
    sources: Sequence[Path], target: Path, *, child_box: Box, watermark: str
) -> int:
    """Decode `sources` in order, mosaic everything but the child, watermark, encode one
    video-only H.264 MP4. Returns the number of frames written."""
    if not sources:
        raise CopyError("No footage of the requested time range is left to copy.")
    written = 0
    try:
        with av.open(str(target), mode="w", options={"movflags": "+faststart"}) as output:
            output.metadata["comment"] = watermark
            encoder: av.VideoStream | None = None
            for source in sources:
                with av.open(str(source)) as container:
                    stream = container.streams.video[0]
                    rate = stream.average_rate or Fraction(10)
                    for frame in container.decode(stream):
                        image = frame.to_ndarray(format="rgb24")
                        if encoder is None:
                            encoder = output.add_stream("libx264", rate=rate)
                            encoder.width = image.shape[1] - image.shape[1] % 2
                            encoder.height = image.shape[0] - image.shape[0] % 2
                            encoder.pix_fmt = ENCODER["pix_fmt"]
                            encoder.options = {"crf": ENCODER["crf"], "preset": ENCODER["preset"]}
                        image = burn_watermark(mosaic_outside(image, child_box), watermark)
                        out = av.VideoFrame.from_ndarray(
                            np.ascontiguousarray(
                                image[: encoder.height, : encoder.width], dtype=np.uint8
                            ),
                            format="rgb24",
                        )
                        out.pts = written
                        out.time_base = Fraction(1, 1) / Fraction(rate)
                        written += 1
                        for packet in encoder.encode(out.reformat(format="yuv420p")):
                            output.mux(packet)
            if encoder is None or written == 0:
                raise CopyError("The footage of the requested time range has no frames.")
            for packet in encoder.encode(None):
                output.mux(packet)
    except (av.error.FFmpegError, ValueError, IndexError) as error:
        target.unlink(missing_ok=True)
        raise CopyError(f"could not make the copy: {error}") from error
    except CopyError:
        target.unlink(missing_ok=True)
        raise
    return written
