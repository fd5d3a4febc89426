"""Working copies: a segment re-encoded for viewing with detected faces pixelated.

Experts and police watch working copies; the original stays unaltered, and each copy records
how it was made (tool and version, parameters, SHA-256 of its source and of itself).

Which faces belong to the case cannot be known automatically, so every detected face is
pixelated, and a reviewer may exempt rectangles of the frame (fractions of width and height)
where the faces of the case are. The detector is scikit-image's LBP frontal-face cascade, the
one model of its kind that ships inside a registry package (OpenCV 5 dropped its Haar cascades
and YuNet needs a downloaded file). It finds frontal faces of at least MIN_FACE_PX pixels;
faces in profile, turned away, small, blurred by motion or partly hidden are often missed, so
a working copy lowers the exposure of bystanders and does not guarantee it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import IntegrityError, transaction

from audit.hashing import file_sha256
from detection.models import Case, Segment
from reports.models import WorkingCopy

logger = logging.getLogger(__name__)

REDACTION_VERSION = "1"
MAX_EXEMPT_REGIONS = 8
Region = tuple[float, float, float, float]
Box = tuple[int, int, int, int]  # x, y, width, height in pixels

DETECTOR = {
    "name": "skimage.feature.Cascade",
    "model": "lbp_frontal_face_cascade (scikit-image data)",
    "scale_factor": 1.2,
    "step_ratio": 1,
    "min_face_px": 24,
    "max_face_fraction": 0.9,
    # Detection runs on every Nth frame; boxes are held (and the previous ones kept) in
    # between, since faces move little in a fraction of a second.
    "detect_every_frames": 3,
    # Pixelated area grows by this fraction of the face on each side, to cover hair and ears.
    "margin": 0.3,
}
PIXELATE_BLOCKS = 6
ENCODER = {"codec": "libx264", "pix_fmt": "yuv420p", "crf": 20, "preset": "veryfast"}


class WorkingCopyUnavailable(Exception):
    """The segment's original is gone (retention) or no longer matches its hash."""


def parse_exempt_regions(raw: str) -> list[Region]:
    """`x,y,w,h;x,y,w,h` with fractions of the frame in [0, 1]; ValidationError otherwise."""
    regions: list[Region] = []
    for part in filter(None, (chunk.strip() for chunk in raw.split(";"))):
        try:
            x, y, w, h = (float(value) for value in part.split(","))
        except ValueError:
            raise ValidationError(
                "Each exempt region is four numbers x,y,w,h separated by commas."
            ) from None
        regions.append((x, y, w, h))
    return validate_exempt_regions(regions)


def validate_exempt_regions(regions: Sequence[Sequence[float]]) -> list[Region]:
    if len(regions) > MAX_EXEMPT_REGIONS:
        raise ValidationError(f"At most {MAX_EXEMPT_REGIONS} exempt regions.")
    clean: list[Region] = []
    for region in regions:
        if len(region) != 4 or not all(math.isfinite(value) for value in region):
            raise ValidationError("An exempt region is four finite numbers x,y,w,h.")
        x, y, w, h = (round(float(value), 4) for value in region)
        if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 - x and 0 < h <= 1 - y):
            raise ValidationError(
                "An exempt region must lie inside the frame: x,y,w,h are fractions in [0, 1]."
            )
        clean.append((x, y, w, h))
    return clean


def redaction_parameters(*, blur: bool, exempt: Sequence[Region] = ()) -> dict[str, Any]:
    return {
        "redaction_version": REDACTION_VERSION,
        "blur": blur,
        "detector": DETECTOR if blur else None,
        "pixelate_blocks": PIXELATE_BLOCKS if blur else None,
        "exempt_regions": [list(region) for region in exempt] if blur else [],
        "encoder": ENCODER,
    }


def tool_versions() -> tuple[str, str]:
    import av
    import skimage

    # The name every working copy records as its maker, kept from where this module used to
    # live so that copies made before and after the move read alike.
    tool = "abusewatch.operations.redaction"
    skimage_version = getattr(skimage, "__version__", "unknown")
    version = f"{REDACTION_VERSION}; scikit-image {skimage_version}; PyAV {av.__version__}"
    return tool, version


class FaceDetector:
    def __init__(self) -> None:
        from skimage import data
        from skimage.feature import Cascade

        self._cascade = Cascade(data.lbp_frontal_face_cascade_filename())  # type: ignore[no-untyped-call]

    def detect(self, rgb: np.ndarray[Any, Any]) -> list[Box]:
        height, width = rgb.shape[:2]
        largest = int(min(height, width) * float(DETECTOR["max_face_fraction"]))  # type: ignore[arg-type]
        smallest = int(DETECTOR["min_face_px"])  # type: ignore[call-overload]
        if largest <= smallest:
            return []
        found = self._cascade.detect_multi_scale(
            img=rgb,
            scale_factor=DETECTOR["scale_factor"],
            step_ratio=DETECTOR["step_ratio"],
            min_size=(smallest, smallest),
            max_size=(largest, largest),
        )
        return [(int(f["c"]), int(f["r"]), int(f["width"]), int(f["height"])) for f in found]


def _exempt(box: Box, regions: Sequence[Region], width: int, height: int) -> bool:
    centre_x = (box[0] + box[2] / 2) / width
    centre_y = (box[1] + box[3] / 2) / height
    return any(x <= centre_x <= x + w and y <= centre_y <= y + h for x, y, w, h in regions)


def pixelate(rgb: np.ndarray[Any, Any], boxes: Sequence[Box]) -> np.ndarray[Any, Any]:
    import cv2

    height, width = rgb.shape[:2]
    margin = float(DETECTOR["margin"])  # type: ignore[arg-type]
    out = rgb.copy()
    for x, y, w, h in boxes:
        left = max(0, int(x - w * margin))
        top = max(0, int(y - h * margin))
        right = min(width, int(x + w * (1 + margin)))
        bottom = min(height, int(y + h * (1 + margin)))
        if right - left < 2 or bottom - top < 2:
            continue
        region = out[top:bottom, left:right]
        small = cv2.resize(region, (PIXELATE_BLOCKS, PIXELATE_BLOCKS), interpolation=cv2.INTER_AREA)
        out[top:bottom, left:right] = cv2.resize(
            small, (right - left, bottom - top), interpolation=cv2.INTER_NEAREST
        )
    return out


def transcode(
    source: Path, target: Path, *, blur: bool, exempt: Sequence[Region]
) -> tuple[int, int]:
    """Re-encode `source` to H.264 MP4 at `target`; (frames, face boxes pixelated)."""
    import av

    detector = FaceDetector() if blur else None
    frames = faces = 0
    held: list[Box] = []
    previous: list[Box] = []
    every = int(DETECTOR["detect_every_frames"])  # type: ignore[call-overload]
    with av.open(str(source)) as container, av.open(str(target), "w", format="mp4") as output:
        video = container.streams.video[0]
        rate = video.average_rate or video.guessed_rate or Fraction(8)
        stream: Any = None
        for frame in container.decode(video):
            rgb = frame.to_ndarray(format="rgb24")
            height, width = rgb.shape[:2]
            # yuv420p needs even sides.
            rgb = rgb[: height - height % 2, : width - width % 2]
            if stream is None:
                stream = output.add_stream(str(ENCODER["codec"]), rate=Fraction(rate))
                stream.width, stream.height = rgb.shape[1], rgb.shape[0]
                stream.pix_fmt = ENCODER["pix_fmt"]
                stream.options = {"crf": str(ENCODER["crf"]), "preset": str(ENCODER["preset"])}
            if detector is not None:
                if frames % every == 0:
                    previous = held
                    found = detector.detect(rgb)
                    held = [b for b in found if not _exempt(b, exempt, rgb.shape[1], rgb.shape[0])]
                boxes = held + previous
                faces += len(held) if frames % every == 0 else 0
                rgb = pixelate(rgb, boxes)
            out_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            out_frame.pts = frames
            out_frame.time_base = Fraction(1) / Fraction(rate)
            for packet in stream.encode(out_frame):
                output.mux(packet)
            frames += 1
        if stream is None:
            raise WorkingCopyUnavailable("The footage holds no video frames.")
        for packet in stream.encode(None):
            output.mux(packet)
    return frames, faces


def working_copy_for(
    segment: Segment,
    *,
    blur: bool = True,
    exempt: Sequence[Region] = (),
    actor: Any = None,
) -> WorkingCopy:
    """The working copy of a segment for these parameters, made once and then reused."""
    exempt = validate_exempt_regions(exempt) if blur else []
    parameters = redaction_parameters(blur=blur, exempt=exempt)
    key = parameters_key(parameters)
    existing = WorkingCopy.objects.filter(segment=segment, parameters_key=key).first()
    if (
        existing is not None
        and existing.file.name
        and existing.file.storage.exists(existing.file.name)
    ):
        return existing
    if segment.status == Segment.Status.PURGED or not segment.original.name:
        raise WorkingCopyUnavailable("The footage of this segment has been erased.")
    try:
        source = Path(segment.original.path)
        source_sha256 = file_sha256(source)
    except (FileNotFoundError, NotImplementedError):
        raise WorkingCopyUnavailable("The footage of this segment has been erased.") from None
    if segment.original_sha256 and source_sha256 != segment.original_sha256:
        # Never derive from an original that no longer matches what was recorded.
        raise WorkingCopyUnavailable("The original does not match its recorded SHA-256.")
    tool, version = tool_versions()
    with tempfile.TemporaryDirectory(prefix="abusewatch-redact-") as tmp:
        target = Path(tmp) / "working.mp4"
        frames, faces = transcode(source, target, blur=blur, exempt=exempt)
        copy = WorkingCopy(
            segment=segment,
            sha256=file_sha256(target),
            size=target.stat().st_size,
            source_kind="original",
            source_sha256=source_sha256,
            blur=blur,
            parameters=parameters,
            parameters_key=key,
            tool=tool,
            tool_version=version,
            frames=frames,
            faces_blurred=faces,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        name = f"segment-{segment.pk}-{'blurred' if blur else 'unblurred'}-{key[:12]}.mp4"
        with target.open("rb") as handle:
            copy.file.save(name, File(handle), save=False)
    try:
        with transaction.atomic():
            if existing is not None:
                # The row outlived its file (removed by hand): replace it.
                WorkingCopy.objects.filter(pk=existing.pk).delete()
            copy.full_clean()
            copy.save()
    except IntegrityError:
        # Another request made the same copy meanwhile; keep theirs.
        copy.file.storage.delete(copy.file.name or "")
        return WorkingCopy.objects.get(segment=segment, parameters_key=key)
    return copy


def parameters_key(parameters: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(parameters, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def default_policy_key() -> str:
    """The cache key of the one copy every viewer gets: every detected face pixelated."""
    return parameters_key(redaction_parameters(blur=True))


def case_working_copies_make(case: Case, *, actor: Any = None) -> tuple[int, int]:
    """Make the default (blurred) working copy of each of a case's segments that lacks one.

    Ahead of time (a task when a case is reported) or at the latest when a package is built;
    each segment's copy is made once and reused, whoever asks. Returns (ready, unavailable):
    a segment whose footage was erased, changed or cannot be decoded gets none, and the
    package says so by its absence; one bad segment must not stop the others.
    """
    ready = unavailable = 0
    for segment in case.segments.exclude(status=Segment.Status.PURGED).order_by("started_at"):
        try:
            working_copy_for(segment, blur=True, actor=actor)
        except WorkingCopyUnavailable:
            unavailable += 1
            continue
        except Exception:  # a decoder error on one corrupt window (PyAV raises many kinds)
            logger.exception("working copy of segment %s failed", segment.pk)
            unavailable += 1
            continue
        ready += 1
    return ready, unavailable


def working_copy_manifest_entry(copy: WorkingCopy) -> dict[str, Any]:
    """How a working copy was derived, for an evidence manifest (`path` is its MEDIA_ROOT
    name; a package builder replaces it with the name inside the package)."""
    return {
        "kind": "working_copy",
        "segment": copy.segment_id,
        "path": copy.file.name,
        "sha256": copy.sha256,
        "size": copy.size,
        "derived_from": {"kind": copy.source_kind, "sha256": copy.source_sha256},
        "blur": copy.blur,
        "faces_blurred": copy.faces_blurred,
        "frames": copy.frames,
        "tool": copy.tool,
        "tool_version": copy.tool_version,
        "parameters": copy.parameters,
        "created_at": copy.created_at.isoformat(),
        "created_by": copy.created_by.get_username() if copy.created_by else None,
    }


def working_copies_for_segments(segment_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Working copies of these segments with their derivation, for an evidence manifest."""
    copies = WorkingCopy.objects.filter(segment_id__in=list(segment_ids)).order_by(
        "segment_id", "created_at", "pk"
    )
    return [working_copy_manifest_entry(copy) for copy in copies.select_related("created_by")]


def working_copies_for_case(case_id: int) -> list[dict[str, Any]]:
    segment_ids = list(
        Case.segments.through.objects.filter(case_id=case_id).values_list("segment_id", flat=True)
    )
    return working_copies_for_segments(segment_ids)
