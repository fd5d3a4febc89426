"""Keep exactly one reader per enabled camera with a source, as the camera table changes."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.db import DatabaseError, connection, connections

from cameras.ingest.reader import (
    CameraConfig,
    CameraReader,
    SessionWindow,
    StatusReport,
    redact,
)
from cameras.models import Camera
from cameras.services import camera_set_status
from ml.preprocess import InputSpec

logger = logging.getLogger(__name__)


def store_status(config: CameraConfig, report: StatusReport) -> None:
    """A reader's health report becomes the camera's status (and a live camera.status)."""
    camera_set_status(
        camera_id=config.camera_id,
        status=report.status,
        detail=report.detail,
        last_frame_at=(
            dt.datetime.fromtimestamp(report.last_frame_wall, tz=dt.UTC)
            if report.last_frame_wall
            else None
        ),
        measured_fps=report.measured_fps,
    )


def _db_safe(callback: Callable[[CameraConfig, Any], Any]) -> Callable[[CameraConfig, Any], None]:
    """Drop a broken database connection so the reader's next call opens a fresh one."""

    def call(config: CameraConfig, payload: Any) -> None:
        try:
            callback(config, payload)
        except DatabaseError:
            connection.close()
            raise

    return call


def start_delays(
    configs: Sequence[CameraConfig], *, shard_index: int, shard_count: int, spread: float
) -> list[float]:
    """How long each of these readers, started together, waits before it connects.

    A window starts at the first keyframe its reader receives, so readers that connect in the
    same instant close their windows in the same instant, every window, for as long as they
    run: one burst of N windows for ingestion to store and the model to score, then nothing.
    Cameras connected at different moments, each sending keyframes on its own clock, close
    theirs at different moments; a shard starting connects them all at once, and a recorder
    replaying many streams in step (the demo, the bench) would keep them in step.
    Spreading the connections over one window (`spread` of the window stride; 0 turns it off)
    gives each reader its own slot, interleaved across shards, so windows close a few at a time.
    A single reader started alone (a camera added, a reader restarted after a failure) gets no
    delay: nothing closes in step with it, and its footage should start at once."""
    count = len(configs)
    if count < 2 or spread <= 0:
        return [0.0] * count
    slots = count * shard_count
    return [
        spread
        * (config.window_seconds - config.window_overlap_seconds)
        * (index * shard_count + shard_index)
        / slots
        for index, config in enumerate(configs)
    ]


class IngestManager:
    def __init__(
        self,
        *,
        shard_index: int = 0,
        shard_count: int = 1,
        on_window: Callable[[CameraConfig, SessionWindow], Any],
        frame_spec: Callable[[], InputSpec],
        on_status: Callable[[CameraConfig, StatusReport], Any] | None = None,
        on_stopped: Callable[[], Any] | None = None,
        storage_lag: Callable[[], float] | None = None,
    ) -> None:
        """`on_window` stores a closed window and `frame_spec` gives the active model's input
        (its frame size and resize rule): the ingest command wires both to the pipeline
        (detection sits above cameras). `on_stopped` runs once every reader has stopped
        (the window writer stores what they handed over); `storage_lag` says how far behind
        that writer is (the readers' DecodeShedder gives way to it)."""
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.frame_spec = frame_spec
        self.on_window = _db_safe(on_window)
        self.on_status = _db_safe(on_status or store_status)
        self.on_stopped = on_stopped
        self.storage_lag = storage_lag
        self.readers: dict[int, CameraReader] = {}

    def desired(self) -> dict[int, CameraConfig]:
        spec = self.frame_spec()
        cameras = Camera.objects.filter(enabled=True).exclude(source_uri="").order_by("pk")
        return {
            camera.pk: CameraConfig(
                camera_id=camera.pk,
                source_uri=camera.source_uri,
                analysis_uri=camera.analysis_uri,
                analysis_fps=camera.analysis_fps,
                window_seconds=camera.window_seconds,
                window_overlap_seconds=camera.window_overlap_seconds,
                frame_height=spec.height,
                frame_width=spec.width,
                frame_resize=spec.resize,
            )
            for camera in cameras
            if camera.pk % self.shard_count == self.shard_index
        }

    def sync(self) -> None:
        """Start, restart and stop readers to match the camera table.

        Readers started together (a shard starting, many cameras added at once) are spread
        over one window (`start_delays`)."""
        from django.conf import settings

        desired = self.desired()
        for camera_id, reader in list(self.readers.items()):
            if desired.get(camera_id) != reader.config or not reader.is_alive():
                reader.stop()
                del self.readers[camera_id]
        starting = [config for pk, config in desired.items() if pk not in self.readers]
        delays = start_delays(
            starting,
            shard_index=self.shard_index,
            shard_count=self.shard_count,
            spread=settings.INGEST_START_SPREAD,
        )
        for config, delay in zip(starting, delays, strict=True):
            camera_id = config.camera_id
            reader = CameraReader(
                config,
                on_window=self.on_window,
                on_status=self.on_status,
                backoff_initial=settings.INGEST_BACKOFF_INITIAL_SECONDS,
                backoff_max=settings.INGEST_BACKOFF_MAX_SECONDS,
                read_timeout=settings.INGEST_READ_TIMEOUT_SECONDS,
                status_interval=settings.INGEST_STATUS_SECONDS,
                # Each reader thread has its own database connection: close it on the way out.
                # `connection.close` itself would bind this (manager) thread's connection now;
                # `close_all` runs in the reader thread and closes that thread's own.
                on_exit=connections.close_all,
                start_delay=delay,
                storage_lag=self.storage_lag,
            )
            reader.start()
            self.readers[camera_id] = reader
            logger.info(
                "camera %s: reading %s%s",
                camera_id,
                redact(config.source_uri),
                f", analysing {redact(config.analysis_uri)}" if config.analysis_uri else "",
            )

    def run(self, stop: threading.Event, *, poll_seconds: float) -> None:
        while not stop.is_set():
            try:
                self.sync()
            except DatabaseError:
                logger.exception("could not read the camera table; retrying")
                connection.close()
            stop.wait(poll_seconds)
        self.stop_all()

    def stop_all(self, timeout: float = 10.0) -> None:
        for reader in self.readers.values():
            reader.stop()
        for reader in self.readers.values():
            reader.join(timeout)
        self.readers.clear()
        if self.on_stopped is not None:
            self.on_stopped()
