"""Clips pushed by an edge device (a camera box that cuts its own windows).

`POST /api/edge/clips/` with `Authorization: Bearer <camera upload token>` and a multipart body:
`clip` (the video file) and `started_at` (ISO 8601 with a time zone). The clip is checked (size,
container, codec, duration, decodability) before anything is stored, then it follows the same
path as an ingested window: Segment, preview, motion gate, inference queue. The answer is
202 as soon as the clip is stored, whatever the broker does; a retry of the same clip for the
same start gets the same answer (idempotent), a different clip for that start 409.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.hashing import file_sha256
from cameras.ingest.media import (
    MP4_CODECS,
    MediaError,
    motion_score,
    remux_file,
    streams_besides_video,
    transcode_preview,
)
from cameras.models import Camera
from cameras.services import camera_for_upload_token
from detection.model_versions import model_frame_spec
from detection.models import Segment
from detection.pipeline import SegmentConflict, segment_create
from ml.frames import FrameSampler
from ml.preprocess import InputSpec
from ml.video import model_frame

ALLOWED_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".avi", ".ts", ".webm"})
ALLOWED_CODECS = frozenset({"h264", "hevc", "mjpeg", "mpeg4", "vp8", "vp9"})
# What a device may call its file: the name is only checked, never used to store anything.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class ClipRejected(Exception):
    def __init__(self, message: str, *, code: int = status.HTTP_400_BAD_REQUEST) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CheckedClip:
    codec: str
    duration: float
    browser_playable: bool
    frames: np.ndarray  # analysis frames at model size
    frame_count: int


def check_clip(path: Path, *, fps: float, spec: InputSpec) -> CheckedClip:
    """Open and fully decode the clip; refuse anything that is not a sound, short video.
    Its frames come out at the model's size (`spec`), made by the model's own rule."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ClipRejected("The clip has no video stream.", code=415)
            stream = container.streams.video[0]
            codec = str(stream.codec_context.name)
            if codec not in ALLOWED_CODECS:
                raise ClipRejected(
                    f"Video codec {codec!r} is not accepted; send one of "
                    f"{', '.join(sorted(ALLOWED_CODECS))}.",
                    code=415,
                )
            pix_fmt = stream.codec_context.pix_fmt
            time_base = stream.time_base
            frames: list[np.ndarray] = []
            first: float | None = None
            last = 0.0
            count = 0
            # The one frame rule of training, evaluation and the camera reader (ml.frames).
            sampler = FrameSampler(fps)
            for frame in container.decode(stream):
                seconds = (
                    float(frame.pts * time_base)
                    if frame.pts is not None and time_base
                    else count / 25
                )
                first = seconds if first is None else first
                last = seconds - first
                count += 1
                if last > settings.EDGE_CLIP_MAX_SECONDS:
                    raise ClipRejected(
                        f"The clip is longer than {settings.EDGE_CLIP_MAX_SECONDS:g} seconds."
                    )
                copies = sampler.keep(seconds)
                if copies:
                    frames.extend([model_frame(frame, spec)] * copies)
    except ClipRejected:
        raise
    except (av.error.InvalidDataError, av.error.EOFError) as error:
        raise ClipRejected(f"The clip is not a readable video file ({error}).", code=415) from error
    except (av.error.FFmpegError, ValueError, OSError) as error:
        raise ClipRejected(f"The clip could not be decoded ({error}).") from error
    if count < 2 or len(frames) < 2:
        raise ClipRejected("The clip holds fewer than two decodable frames (empty or truncated).")
    duration = last + (1.0 / fps if count else 0)
    if duration < settings.EDGE_CLIP_MIN_SECONDS:
        raise ClipRejected(
            f"The clip lasts {duration:.2f} s; at least {settings.EDGE_CLIP_MIN_SECONDS:g} s "
            "are needed."
        )
    return CheckedClip(
        codec=codec,
        duration=duration,
        browser_playable=codec == "h264" and (pix_fmt or "") in {"yuv420p", "yuvj420p"},
        frames=np.stack(frames),
        frame_count=count,
    )


def edge_clip_store(*, camera: Camera, upload: UploadedFile[bytes], started_at: dt.datetime) -> Any:
    """Check a pushed clip and store it as a Segment (all or nothing)."""
    with tempfile.TemporaryDirectory(prefix="abusewatch-edge-") as folder:
        suffix = Path(upload.name or "").suffix.lower()
        original = Path(folder) / f"original{suffix}"
        with original.open("wb") as handle:
            for chunk in upload.chunks():
                handle.write(chunk)
        clip = check_clip(original, fps=camera.analysis_fps, spec=model_frame_spec())
        # The device's bytes are the evidence, stored as sent, when they hold video alone. A
        # sound track (or any other stream) is dropped before anything is stored, by remuxing
        # the video bitstream unaltered on its own: no audio recording from CCTV (PIPA Art.
        # 25(5)). The preview is a video-only faststart MP4: remuxed when already H.264,
        # transcoded otherwise.
        preview = Path(folder) / "preview.mp4"
        try:
            if streams_besides_video(original):
                video_only = Path(folder) / f"video{'.mp4' if clip.codec in MP4_CODECS else '.mkv'}"
                remux_file(original, video_only)
                original = video_only
            if clip.browser_playable:
                remux_file(original, preview)
            else:
                transcode_preview(original, preview, fps=settings.PREVIEW_TRANSCODE_FPS)
        except MediaError as error:
            raise ClipRejected(str(error)) from error
        # Compared after the sound track is dropped: what is stored is the video alone, so a
        # retried clip with audio matches its stored original only in that form.
        stored = Segment.objects.filter(camera=camera, started_at=started_at).first()
        if stored is not None and stored.original_sha256 == file_sha256(original):
            # The same clip again: a device retrying after our answer was lost. Answer as
            # the first time instead of refusing it as a conflict.
            return stored
        return segment_create(
            camera_id=camera.pk,
            started_at=started_at,
            ended_at=started_at + dt.timedelta(seconds=clip.duration),
            source=Segment.Source.EDGE,
            original=original,
            preview=preview,
            motion_score=motion_score(list(clip.frames)),
            frame_count=clip.frame_count,
            analysis_frames=clip.frames,
        )


def _error(message: str, code: int) -> Response:
    response = Response({"detail": message}, status=code)
    if code == status.HTTP_401_UNAUTHORIZED:
        response["WWW-Authenticate"] = 'Bearer realm="edge"'
    return response


class EdgeClipInput(serializers.Serializer[dict[str, Any]]):
    """The multipart form an edge device posts (documents the API; checks are in the view)."""

    clip = serializers.FileField(help_text="The video clip (.mp4, .mkv, .mov, ...).")
    started_at = serializers.DateTimeField(help_text="When the clip starts, with a time zone.")


class EdgeClipOutput(serializers.Serializer[dict[str, Any]]):
    segment = serializers.IntegerField()
    camera = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField()
    status = serializers.CharField()
    original_sha256 = serializers.CharField()


class EdgeClipUpload(APIView):
    # The camera's own token is the credential; no user session, so no CSRF either.
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": EdgeClipInput},
        responses={202: EdgeClipOutput},
        auth=[],
        description="An edge device pushes one clip, authenticated by its camera's upload "
        "token (Authorization: Bearer <token>). 202: the clip is stored and will be analysed "
        "(even while the queue is unavailable). Sending the same clip for the same start "
        "again answers 202 with the stored segment; a different clip for that start is 409.",
    )
    def post(self, request: Request) -> Response:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error("Send the camera's upload token as 'Authorization: Bearer <token>'.", 401)
        camera = camera_for_upload_token(token.strip())
        if camera is None:
            return _error("The upload token is not valid (or its camera is disabled).", 401)
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > settings.EDGE_UPLOAD_MAX_BYTES + 64 * 1024:
            return _error(self._too_big(), 413)
        upload = request.FILES.get("clip")
        if upload is None:
            return _error("The multipart field 'clip' with the video file is missing.", 400)
        if upload.size is None or upload.size == 0:
            return _error("The clip is empty.", 400)
        if upload.size > settings.EDGE_UPLOAD_MAX_BYTES:
            return _error(self._too_big(), 413)
        name = upload.name or ""
        if not SAFE_NAME.match(name):
            return _error(
                "The clip's file name may only use letters, digits, '.', '_' and '-' "
                "(at most 100 characters).",
                400,
            )
        if Path(name).suffix.lower() not in ALLOWED_SUFFIXES:
            return _error(
                f"Send a video file ({', '.join(sorted(ALLOWED_SUFFIXES))}), not {name!r}.", 415
            )
        raw_start = request.data.get("started_at", "") if hasattr(request.data, "get") else ""
        try:
            started_at = parse_datetime(str(raw_start))
        except ValueError:  # well-formed but impossible, as in 2026-13-45T25:00
            started_at = None
        if started_at is None:
            return _error("'started_at' must be an ISO 8601 date and time.", 400)
        if timezone.is_naive(started_at):
            return _error("'started_at' needs a time zone, as in 2026-11-24T09:00:00+09:00.", 400)
        if started_at > timezone.now() + dt.timedelta(minutes=5):
            return _error("'started_at' is in the future.", 400)
        oldest = timezone.now() - dt.timedelta(days=settings.EDGE_UPLOAD_MAX_AGE_DAYS)
        if started_at < oldest:
            return _error(
                f"'started_at' is more than {settings.EDGE_UPLOAD_MAX_AGE_DAYS} days ago; "
                "clips that old are not accepted.",
                400,
            )
        try:
            segment = edge_clip_store(camera=camera, upload=upload, started_at=started_at)
        except ClipRejected as error:
            return _error(str(error), error.code)
        except SegmentConflict as error:
            return _error(error.messages[0], 409)
        return Response(
            {
                "segment": segment.pk,
                "camera": camera.pk,
                "started_at": segment.started_at.isoformat(),
                "ended_at": segment.ended_at.isoformat(),
                "status": segment.status,
                "original_sha256": segment.original_sha256,
            },
            # Accepted: stored; analysis follows (see detection.reconcile if the queue is down).
            status=status.HTTP_202_ACCEPTED,
        )

    @staticmethod
    def _too_big() -> str:
        return f"The clip is larger than {settings.EDGE_UPLOAD_MAX_BYTES} bytes."
