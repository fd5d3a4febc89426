"""One camera's reader: open the source, decode at the analysis rate, cut windows, reconnect.

A reader is a thread. PyAV decodes and demuxes without holding the GIL, so one process serves
many cameras; `run_ingest --shard` spreads cameras over processes when one is not enough.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av

from cameras.ingest.decoding import (
    INGEST_TOTALS,
    AnalysisDecoder,
    DecodeOptions,
    DecodeShedder,
    IngestTotals,
    convert_for_analysis,
)
from cameras.ingest.media import PacketRecord, StreamInfo, stream_info
from cameras.ingest.segmenter import Segmenter, StreamDiscontinuity, Window
from cameras.sources import Source, SourceError, parse_source_uri
from cameras.status_details import DETECT_STREAM_UNAVAILABLE, INGESTION_STOPPED, RECEIVING_VIDEO
from ml.frames import FrameSampler
from ml.preprocess import InputSpec

if TYPE_CHECKING:
    from cameras.ingest.analysis_stream import DetectFeed

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".avi", ".mov", ".ts", ".webm", ".mjpeg", ".m4v"})
# Demuxers that carry no timing and number frames at an assumed 25 fps (an HTTP MJPEG camera
# sends multipart JPEGs at whatever rate it likes): their frames are timed on arrival instead,
# in milliseconds.
ARRIVAL_TIMED_FORMATS = frozenset({"mpjpeg", "mjpeg"})
ARRIVAL_TIME_BASE = Fraction(1, 1000)
# A replayed file's next pass goes on from the last one's end if it starts within this many
# seconds of it (CameraReader._resume_replay); later, it starts afresh, leaving a gap.
REPLAY_RESUME_MAX_SECONDS = 10.0


@dataclass(frozen=True)
class CameraConfig:
    """What a reader needs from a Camera row; a change of any field restarts the reader."""

    camera_id: int
    source_uri: str
    analysis_fps: float
    window_seconds: float
    window_overlap_seconds: float
    frame_height: int
    frame_width: int
    # A detect stream, decoded for analysis instead of the main one (which is then only
    # demuxed and recorded); blank: the main stream is decoded (cameras.ingest.analysis_stream).
    analysis_uri: str = ""
    # How decoded frames become model-size frames: the active model's rule (InputSpec.resize).
    frame_resize: str = "opencv-area"


@dataclass(frozen=True)
class StatusReport:
    status: str  # a Camera.Status value
    detail: str
    last_frame_wall: float | None = None
    measured_fps: float | None = None


@dataclass(frozen=True)
class SessionWindow:
    """A window closed by a reader, with its place in wall-clock time."""

    window: Window
    info: StreamInfo
    wall_start: float
    wall_end: float
    # The motion gate left part of the window undecoded (it stopped where an overlapping window
    # began): its analysis frames are not all here, so the original must be decoded for them.
    undecoded: bool = False
    # Not decoded at all because the reader was behind its stream (DecodeShedder): stored for
    # analysis later, from the original, when the load allows.
    shed: bool = False


_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide user:password@ of URLs: status details are shown to centre admins and logged."""
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


class SourceEnded(Exception):
    """A live source stopped sending (the server closed, or the read timed out)."""


def clips_of(source: Source) -> list[Path]:
    """The files a file source replays, in name order; a folder is searched recursively."""
    path = Path(source.uri)
    if path.is_file():
        return [path]
    if path.is_dir():
        clips = sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
        )
        if clips:
            return clips
        raise SourceError(f"The folder {path} holds no video clips.")
    raise SourceError(f"{path} does not exist.")


def open_container(source: Source, *, clip: Path | None, timeout: float) -> Any:
    return source.type.open(str(clip) if clip is not None else source.uri, timeout=timeout)


class CameraReader(threading.Thread):
    def __init__(
        self,
        config: CameraConfig,
        *,
        on_window: Callable[[CameraConfig, SessionWindow], None],
        on_status: Callable[[CameraConfig, StatusReport], None],
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        read_timeout: float = 5.0,
        status_interval: float = 5.0,
        on_exit: Callable[[], None] | None = None,
        decode_options: DecodeOptions | None = None,
        paced: bool = True,
        totals: IngestTotals | None = None,
        start_delay: float = 0.0,
        storage_lag: Callable[[], float] | None = None,
    ) -> None:
        """`decode_options`: decoder options and the motion gate (default: from settings).
        `paced=False` reads a file as fast as it decodes (bench, tests); `totals`: the counters
        this reader adds to (default: the process's, published by run_ingest); `start_delay`:
        seconds to wait before the first connection (IngestManager.sync spreads the readers it
        starts together); `storage_lag`: how far behind the shard's window writer is (seconds;
        DecodeShedder)."""
        super().__init__(name=f"camera-{config.camera_id}", daemon=True)
        self.config = config
        self.on_window = on_window
        self.on_status = on_status
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.read_timeout = read_timeout
        self.status_interval = status_interval
        self.on_exit = on_exit
        self.decode_options = decode_options or DecodeOptions.from_settings()
        self.paced = paced
        self.totals = totals if totals is not None else INGEST_TOTALS
        self.start_delay = max(0.0, start_delay)
        self.storage_lag = storage_lag or (lambda: 0.0)
        self.stop_event = threading.Event()
        self.spec = InputSpec(
            height=config.frame_height, width=config.frame_width, resize=config.frame_resize
        )
        self._status: str | None = None
        self._frames_since_report = 0
        self._last_report = time.monotonic()
        self._last_frame_wall: float | None = None
        # Where a replayed file's last pass ended (wall, monotonic): its next pass goes on from
        # there, as a camera that never stops would (_resume_replay).
        self._replay_end: tuple[float, float] | None = None
        self._session_window_end: float | None = None  # the last stored window's end, in the
        # session's own seconds
        # What "online" says: whether the detect stream serves (a change is reported at once).
        self._online_detail = RECEIVING_VIDEO
        self.detect_feed: DetectFeed | None = None
        # Counters the bench and the tests read.
        self.windows_emitted = 0
        self.windows_still = 0
        self.windows_shed = 0
        self.sessions = 0
        self.frames_decoded = 0
        self.frames_not_decoded = 0

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        backoff = self.backoff_initial
        try:
            source = parse_source_uri(self.config.source_uri)
        except SourceError as error:
            self._report("error", f"Bad source: {error}")
            return
        if self.start_delay:
            self.stop_event.wait(self.start_delay)
        while not self.stop_event.is_set():
            delivered = False
            try:
                delivered = self._play(source)
                if self.stop_event.is_set():
                    break
                if not source.type.loops:
                    raise SourceEnded("the stream ended (camera or server closed it)")
            except SourceError as error:
                self._report("error", str(error))
            except SourceEnded as error:
                self._report("offline", f"Disconnected: {error}; reconnecting")
            except av.error.FFmpegError as error:
                self._report("offline", f"Cannot read {self._where(source)}: {error}")
            except OSError as error:
                self._report("offline", f"Cannot read {self._where(source)}: {error}")
            except Exception as error:
                logger.exception("camera %s reader failed", self.config.camera_id)
                self._report("error", f"Reader failed: {type(error).__name__}: {error}")
            if delivered:
                backoff = self.backoff_initial
                if source.type.loops:
                    continue  # a replayed file loops at once, like a camera that never stops
            if self.stop_event.wait(backoff):
                break
            if not delivered:
                backoff = min(backoff * 2, self.backoff_max)
        if self._status != "error":
            self._report("offline", INGESTION_STOPPED)
        if self.on_exit is not None:
            self.on_exit()

    def play_once(self) -> bool:
        """Read the source once in the calling thread (every clip of a file source), without
        reconnecting: for the bench and tests. True when it delivered frames."""
        return self._play(parse_source_uri(self.config.source_uri))

    @staticmethod
    def _where(source: Source) -> str:
        return redact(source.uri)

    def _play(self, source: Source) -> bool:
        """Play the source once (every clip of a file source); True when frames arrived."""
        delivered = False
        clips: list[Path | None] = list(clips_of(source)) if source.type.loops else [None]
        for index, clip in enumerate(clips):
            if self.stop_event.is_set():
                break
            delivered |= self._session(source, clip, clip_index=index)
        if source.type.loops and not delivered:
            raise SourceError(f"No clip of {source.uri} could be decoded.")
        return delivered

    def _session(self, source: Source, clip: Path | None, *, clip_index: int = 0) -> bool:
        self.sessions += 1
        config = self.config
        segmenter = Segmenter(length=config.window_seconds, overlap=config.window_overlap_seconds)
        detect = self._detect_feed(source, clip_index)
        try:
            return self._read(source, clip, segmenter, detect)
        finally:
            if detect is not None:
                detect.stop()

    def _detect_feed(self, source: Source, clip_index: int) -> DetectFeed | None:
        """The session's detect stream, when the camera has one (analysis_stream.py)."""
        if not self.config.analysis_uri:
            return None
        from cameras.ingest.analysis_stream import DetectFeed  # it imports this module

        self.detect_feed = DetectFeed(
            self.config.analysis_uri,
            main=source,
            clip_index=clip_index,
            fps=self.config.analysis_fps,
            # Converted and counted as the main stream's frames are.
            convert=partial(
                convert_for_analysis,
                spec=self.spec,
                totals=self.totals,
            ),
            on_unavailable=self._detect_unavailable,
            read_timeout=self.read_timeout,
            backoff_initial=self.backoff_initial,
            backoff_max=self.backoff_max,
            name=self.name,
            totals=self.totals,
        )
        return self.detect_feed

    def _detect_unavailable(self, reason: str | None) -> None:
        detail = RECEIVING_VIDEO if reason is None else f"{DETECT_STREAM_UNAVAILABLE} {reason}"
        if detail != self._online_detail:
            self._online_detail = detail
            self._status = None  # reported with the next frame

    def _read(
        self, source: Source, clip: Path | None, segmenter: Segmenter, detect: DetectFeed | None
    ) -> bool:
        config = self.config
        delivered = False
        try:
            container = open_container(source, clip=clip, timeout=self.read_timeout)
        except av.error.FFmpegError as error:
            if clip is not None:
                # One bad clip in a demo folder must not stop the others.
                logger.warning("skipping unreadable clip %s: %s", clip, error)
                return False
            raise
        with container:
            if not container.streams.video:
                raise SourceError(f"{self._where(source)} has no video stream.")
            stream = container.streams.video[0]
            arrival_timed = container.format.name in ARRIVAL_TIMED_FORMATS
            # The motion gate needs the packets' own timestamps to resume decoding from a
            # keyframe; arrival-timed sources are intra-only (MJPEG) and never gated anyway.
            decoder = AnalysisDecoder(
                stream, options=self.decode_options, gated=not arrival_timed, totals=self.totals
            )
            info = stream_info(stream)
            if arrival_timed:
                info = replace(info, time_base=ARRIVAL_TIME_BASE)
            # A file, an HLS playlist or a progressive HTTP video can be read faster than real
            # time; replayed at its own rate it behaves as a live camera and its windows never
            # get timestamps in the future. RTSP and devices are live already.
            paced = self.paced and source.type.paced and not arrival_timed
            time_base = info.time_base
            origin: float | None = None
            self._session_window_end = None
            last_arrival_pts = -1
            wall_origin = 0.0
            mono_origin = 0.0
            # The one frame rule of training and evaluation (ml.frames): which decoded frames
            # fill which analysis ticks, a slow camera's frames repeated, a fast one's dropped.
            sampler = FrameSampler(config.analysis_fps)
            shedder = DecodeShedder(
                shed_after=self.decode_options.shed_after,
                resume_below=self.decode_options.shed_resume,
            )

            def take(frame: Any, frame_seconds: float) -> None:
                slots = sampler.slots(frame_seconds)
                image = decoder.small(frame, self.spec) if slots else None
                assert sampler.origin is not None, "set by the first frame offered"
                ticks = [sampler.origin + slot.seconds for slot in slots]
                if detect is not None:
                    # The main stream fills in for the detect stream: ticks it filled stay.
                    ticks = detect.ticks_after_detect(ticks)
                    image = image if ticks else None
                segmenter.add_frame(frame_seconds, image, ticks=ticks)
                if image is not None:
                    decoder.pixels(frame_seconds, image)
                if detect is None:  # else counted per packet below
                    self._frame_arrived(wall_origin + frame_seconds)

            seconds: float | None = None

            for packet in self._packets(container, stream):
                if self.stop_event.is_set():
                    break
                if packet.size == 0:
                    # The demuxer's end-of-stream marker: it flushes the decoder, whose last
                    # frames (held back to reorder B-frames) belong to the last window too.
                    main_analysed = detect is None or detect.fallback
                    if origin is not None and not arrival_timed and main_analysed:
                        for frame in decoder.flush(packet):
                            if frame.pts is not None:
                                take(frame, float(frame.pts * time_base) - origin)
                    continue
                if arrival_timed:
                    arrived = time.monotonic()
                    if origin is None:
                        origin, wall_origin, mono_origin = 0.0, time.time(), arrived
                    # Strictly increasing, so two frames in one millisecond still mux.
                    last_arrival_pts = max(
                        last_arrival_pts + 1, round((arrived - mono_origin) / time_base)
                    )
                    packet.pts = packet.dts = last_arrival_pts
                    packet.duration = 0
                if packet.pts is None:
                    continue
                seconds_abs = float(packet.pts * time_base)
                if origin is None:
                    if not packet.is_keyframe:
                        continue
                    origin = seconds_abs
                    wall_origin, mono_origin = self._resume_replay(source)
                seconds = seconds_abs - origin
                if detect is not None and detect.epoch_mono is None:
                    detect.begin(mono_origin)  # both clocks start at the main keyframe
                if paced:
                    # Replay at the camera's own rate, as a live camera would deliver it.
                    delay = mono_origin + seconds - time.monotonic()
                    if delay > 0 and self.stop_event.wait(delay):
                        break
                record = PacketRecord(
                    data=bytes(packet),
                    pts=int(packet.pts),
                    dts=int(packet.dts if packet.dts is not None else packet.pts),
                    duration=int(packet.duration or 0),
                    keyframe=bool(packet.is_keyframe),
                    seconds=seconds,
                )
                decode = True
                if detect is not None:
                    # The detect stream's frames up to this packet go in first, so no window
                    # closes without them; the main packet is decoded only in its stead.
                    decode = detect.before_packet(seconds, record.keyframe, segmenter.add_frame)
                    self._frame_arrived(wall_origin + seconds)
                    delivered = True
                try:
                    closed = segmenter.add_packet(record)
                except StreamDiscontinuity as gap:
                    # Keep what came before the break; a new session gets a new keyframe and
                    # a new time origin.
                    if detect is not None:
                        detect.close(None, segmenter.add_frame)
                    for window in segmenter.flush():
                        self._emit(window, info, wall_origin, decoder, detect)
                    decoder.close()
                    raise SourceEnded(f"{gap}; starting the stream again") from gap
                for window in closed:
                    self._emit(window, info, wall_origin, decoder, detect)
                # Behind its stream, or its shard's writer behind storing, the reader records
                # without decoding (an arrival-timed source's packets are due when they
                # arrive: never behind); measured after storing the windows this packet
                # closed, which is where a reader loses time.
                shedding = not arrival_timed and shedder.update(
                    now=time.monotonic(), due=mono_origin + seconds, storage_lag=self.storage_lag()
                )
                if detect is not None:
                    # Decoding the detect stream is then what gives way (its own thread).
                    detect.shedding = shedding
                if not decode:
                    continue  # the detect stream is analysed: the main one is only recorded
                decoder.shedding = shedding
                frames = decoder.push(packet, seconds=seconds, window_start=segmenter.open_since)
                if not decoder.decoding and detect is None:
                    # Left undecoded by the motion gate, but a frame the camera sent: the
                    # camera's health (last frame, measured fps) counts it.
                    self._frame_arrived(wall_origin + seconds)
                for frame in frames:
                    take(
                        frame,
                        float(frame.pts * time_base) - origin
                        if frame.pts is not None and not arrival_timed
                        else seconds,
                    )
                    delivered = True
            if detect is not None:
                # Stopping (a restart, a deploy, a camera removed): the detect frames that
                # have arrived are kept, without waiting for the rest.
                detect.close(None if self.stop_event.is_set() else seconds, segmenter.add_frame)
            # The open window is stored on a stop too: what the camera sent of it is footage,
            # and it exists nowhere else (up to a window per camera at every restart).
            for window in segmenter.flush():
                self._emit(window, info, wall_origin, decoder, detect)
            end = self._stored_until()
            if source.type.loops and end is not None and not self.stop_event.is_set():
                self._replay_end = (wall_origin + end, mono_origin + end)
            decoder.close()
            self.frames_decoded += decoder.frames_decoded
            self.frames_not_decoded += decoder.frames_not_decoded
        # Packets the motion gate kept undecoded arrived all the same: the source works.
        return delivered or decoder.frames_not_decoded > 0

    def _packets(self, container: Any, stream: Any) -> Iterator[Any]:
        # Demuxing the video stream alone is what keeps sound out of storage: a camera's audio
        # track is never read, so no window can carry it (PIPA Art. 25(5)).
        # The end-of-stream marker (size 0) is passed on: decoding it flushes the decoder.
        yield from container.demux(stream)

    def _emit(
        self,
        window: Window,
        info: StreamInfo,
        wall_origin: float,
        decoder: AnalysisDecoder,
        detect: DetectFeed | None,
    ) -> None:
        if not window.packets:
            return
        undecoded = shed = False
        detect_shed = detect is not None and detect.shed_in(window.start, window.end)
        if decoder.shed_in(window.start, window.end) or detect_shed:
            # The reader was behind its stream: recorded now, analysed when the load allows.
            window.frames, shed = [], True
        elif decoder.undecoded_in(window.start, window.end) and window.source_frames:
            # Decoded in part only (overlapping windows): no half set of analysis frames.
            window.frames, undecoded = [], True
        elif len(window.frames) < 2:
            # Nothing decoded in it (the motion gate saw a still scene), or too little to
            # analyse: the footage is stored all the same, as a window without analysis frames.
            window.frames = []
        self.windows_emitted += 1
        self._session_window_end = window.end
        still = not window.frames and not undecoded and not shed
        self.windows_still += still
        self.windows_shed += shed
        self.totals.add(windows=1, windows_still=int(still), windows_shed=int(shed))
        try:
            self.on_window(
                self.config,
                SessionWindow(
                    window=window,
                    info=info,
                    wall_start=wall_origin + window.start,
                    wall_end=wall_origin + window.end,
                    undecoded=undecoded,
                    shed=shed,
                ),
            )
        except Exception:
            # Storing one window failed (disk full, database gone): keep reading, the next
            # window may well succeed; the failure is logged with its cause.
            logger.exception("camera %s: could not store a window", self.config.camera_id)

    def _stored_until(self) -> float | None:
        """The end of the session's last stored window (session seconds), set by _emit."""
        return self._session_window_end

    def _resume_replay(self, source: Source) -> tuple[float, float]:
        """The wall and monotonic time of a session's first frame.

        Live sources: now. A replayed file's next pass starts where the last one's windows
        ended, so its timeline has no gap: reopening the file (and its detect stream) takes
        0.1-1.6 s on a loaded box, which a camera that never stops would not show, and the
        paced reader catches up by reading that much faster than real time. A pass that ended
        long ago (the file failed, the reader was stopped) starts afresh at now.
        """
        wall, mono = time.time(), time.monotonic()
        resume, self._replay_end = self._replay_end, None
        if source.type.loops and resume is not None:
            resume_wall, resume_mono = resume
            if 0.0 <= mono - resume_mono <= REPLAY_RESUME_MAX_SECONDS:
                return resume_wall, resume_mono
        return wall, mono

    def _frame_arrived(self, wall: float) -> None:
        self._frames_since_report += 1
        self._last_frame_wall = wall
        now = time.monotonic()
        elapsed = now - self._last_report
        if self._status != "online" or elapsed >= self.status_interval:
            fps = self._frames_since_report / elapsed if elapsed > 0 and self._status else None
            self._report("online", self._online_detail, measured_fps=fps)

    def _report(self, status: str, detail: str, *, measured_fps: float | None = None) -> None:
        self._status = status
        self._frames_since_report = 0
        self._last_report = time.monotonic()
        report = StatusReport(
            status=status,
            detail=redact(detail)[:500],
            last_frame_wall=self._last_frame_wall,
            measured_fps=round(measured_fps, 2) if measured_fps is not None else None,
        )
        try:
            self.on_status(self.config, report)
        except Exception:
            logger.exception("camera %s: could not store its status", self.config.camera_id)


__all__ = ["CameraConfig", "CameraReader", "SessionWindow", "StatusReport"]
