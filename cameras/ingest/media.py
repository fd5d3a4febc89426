"""Video files of a window: the original bitstream remuxed as is, and a browser preview.

Only PyAV is used (its wheel carries FFmpeg with libx264), so no system ffmpeg is needed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

# Codecs browsers play inside MP4: H.264 in 8-bit 4:2:0. Anything else gets a transcoded preview.
BROWSER_CODECS = frozenset({"h264"})
BROWSER_PIX_FMTS = frozenset({"yuv420p", "yuvj420p"})
# Containers that accept these codecs' packets unchanged.
MP4_CODECS = frozenset({"h264", "hevc", "mpeg4"})


class MediaError(Exception):
    """A clip or stream that cannot be read, remuxed or transcoded; the message says why."""


@dataclass(frozen=True)
class StreamInfo:
    """What a remux needs to know about the source's video stream."""

    codec: str
    width: int
    height: int
    pix_fmt: str | None
    time_base: Fraction
    extradata: bytes | None
    template: Any  # the source av.VideoStream, used as the output stream's template

    @property
    def browser_playable(self) -> bool:
        return self.codec in BROWSER_CODECS and (self.pix_fmt or "yuv420p") in BROWSER_PIX_FMTS

    @property
    def original_suffix(self) -> str:
        # Matroska takes every codec's packets unchanged (MJPEG, VP8, ...); MP4 is what browsers
        # and evidence viewers open for H.264.
        return ".mp4" if self.codec in MP4_CODECS else ".mkv"


def stream_info(stream: Any) -> StreamInfo:
    context = stream.codec_context
    return StreamInfo(
        codec=str(context.name),
        width=int(context.width or 0),
        height=int(context.height or 0),
        pix_fmt=str(context.pix_fmt) if context.pix_fmt else None,
        time_base=stream.time_base or Fraction(1, 90_000),
        extradata=bytes(context.extradata) if context.extradata else None,
        template=stream,
    )


@dataclass(frozen=True)
class PacketRecord:
    """One compressed packet as the camera sent it, kept so a window can be remuxed later."""

    data: bytes
    pts: int
    dts: int
    duration: int
    keyframe: bool
    seconds: float  # presentation time since the session start


def remux_packets(packets: Sequence[PacketRecord], info: StreamInfo, target: Path) -> None:
    """Write the packets unaltered into a new container (timestamps shifted to start at 0).

    The container gets one stream, the video's: readers demux the video stream only, so no
    audio packet is ever recorded (PIPA Art. 25(5)).
    """
    if not packets:
        raise MediaError("a window without packets cannot be stored")
    offset = min(min(p.dts for p in packets), min(p.pts for p in packets))
    options = {"movflags": "+faststart"} if target.suffix == ".mp4" else {}
    try:
        with av.open(str(target), mode="w", options=options) as output:
            out_stream = output.add_stream_from_template(info.template)
            for record in packets:
                packet = av.Packet(record.data)
                packet.pts = record.pts - offset
                packet.dts = record.dts - offset
                packet.duration = record.duration
                packet.time_base = info.time_base
                packet.is_keyframe = record.keyframe
                packet.stream = out_stream
                output.mux(packet)
    except (av.error.FFmpegError, ValueError) as error:
        target.unlink(missing_ok=True)
        raise MediaError(f"could not remux {info.codec} packets: {error}") from error


def remux_file(source: Path, target: Path) -> None:
    """Copy a file's first video stream, and nothing else, into `target` (a faststart MP4, or
    Matroska for a .mkv target) without re-encoding it.

    Only the video stream is demuxed: an audio track the source carries never reaches the
    output (no audio recording from CCTV, PIPA Art. 25(5)).
    """
    options = {"movflags": "+faststart"} if target.suffix == ".mp4" else {}
    try:
        with (
            av.open(str(source)) as container,
            av.open(str(target), mode="w", options=options) as output,
        ):
            stream = container.streams.video[0]
            out_stream = output.add_stream_from_template(stream)
            for packet in container.demux(stream):
                if packet.dts is None:
                    continue
                packet.stream = out_stream
                output.mux(packet)
    except (av.error.FFmpegError, ValueError, IndexError) as error:
        target.unlink(missing_ok=True)
        raise MediaError(f"could not remux {source.name}: {error}") from error


def transcode_preview(source: Path, target: Path, *, fps: float) -> None:
    """Encode a browser-playable H.264 MP4 (libx264, ultrafast, video only) from any
    decodable video file."""
    try:
        with (
            av.open(str(source)) as container,
            av.open(str(target), mode="w", options={"movflags": "+faststart"}) as output,
        ):
            stream = container.streams.video[0]
            rate = Fraction(fps).limit_denominator(1000)
            encoder = output.add_stream("libx264", rate=rate)
            encoder.pix_fmt = "yuv420p"
            encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "26"}
            time_base = stream.time_base or Fraction(1, 1000)
            started: float | None = None
            next_tick = 0.0
            index = 0
            for frame in container.decode(stream):
                seconds = float(frame.pts * time_base) if frame.pts is not None else index / fps
                started = seconds if started is None else started
                if seconds - started + 1e-6 < next_tick:
                    continue
                next_tick += 1.0 / fps
                if not encoder.width:
                    # Even sizes: 4:2:0 chroma needs them.
                    encoder.width = frame.width - frame.width % 2
                    encoder.height = frame.height - frame.height % 2
                image = frame.reformat(width=encoder.width, height=encoder.height, format="yuv420p")
                image.pts = index
                image.time_base = Fraction(1, 1) / rate
                index += 1
                for packet in encoder.encode(image):
                    output.mux(packet)
            if index == 0:
                raise MediaError(f"{source.name} has no decodable frames")
            for packet in encoder.encode(None):
                output.mux(packet)
    except (av.error.FFmpegError, ValueError, IndexError) as error:
        target.unlink(missing_ok=True)
        raise MediaError(f"could not make a preview of {source.name}: {error}") from error
    except MediaError:
        target.unlink(missing_ok=True)
        raise


def motion_score(frames: Sequence[np.ndarray]) -> float:
    """Mean absolute difference between consecutive small frames, 0 (still) to 1."""
    if len(frames) < 2:
        return 0.0
    # The same mean difference of grey (channel-mean) frames, on channel sums in int16: exact
    # (at most 3 x 255) and, summed plane by plane, 1/8 of the cost of a float mean over the
    # colour axis (1.8 -> 0.23 ms a 20-frame window; every window of every camera pays it).
    stacked = np.asarray(frames, dtype=np.uint8)
    summed = stacked[..., 0].astype(np.int16)
    summed += stacked[..., 1]
    summed += stacked[..., 2]
    steps = np.abs(summed[1:] - summed[:-1])
    return float(steps.sum(dtype=np.int64) / steps.size / (3 * 255.0))


def safe_unlink(*paths: Path | None) -> None:
    for path in paths:
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def audio_stream_count(path: Path) -> int:
    """How many audio streams a stored file holds; every file we store must answer 0."""
    with av.open(str(path)) as container:
        return len(container.streams.audio)


def streams_besides_video(path: Path) -> int:
    """Streams other than the first video stream (audio, subtitles, data) a file holds."""
    with av.open(str(path)) as container:
        return len(container.streams) - (1 if container.streams.video else 0)
