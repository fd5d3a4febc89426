"""The path of a window of video, one function per stage:

    store_window -> enqueue -> score_batch -> triage (pure, detection.triage) -> apply_decision

`segment_create` stores a window (from a camera reader through `store_ingested_window`, or
from an edge device's upload) and queues it on commit; `segments_analyse`, run by the inference
task, scores a batch of windows and, one window at a time under its camera's lock, records the
detection, asks triage what it means and applies the answer. A case that must reach the police
is not reported here: detection records the fact and queues `reports.report_case` by name on
commit; reports reacts (detection never imports reports).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

import numpy as np
from celery import signature
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from audit.hashing import file_sha256
from audit.services import audit_record
from cameras.ingest.media import (
    MediaError,
    motion_score,
    remux_packets,
    safe_unlink,
    transcode_preview,
)
from cameras.ingest.reader import CameraConfig, SessionWindow
from cameras.models import Camera
from detection import backpressure, inference
from detection.announce import broadcast_case, broadcast_detection
from detection.bands import Band
from detection.model_versions import model_version_active
from detection.models import Case, Detection, ModelVersion, Segment, Stage2Skipped
from detection.services import REPORT_CASE_TASK, case_end_span, case_transition
from detection.triage import (
    Action,
    Decision,
    OpenCase,
    ScoredWindow,
    thresholds_for,
    triage,
)
from ml.input_spec import InputSpec
from ml.video import VideoDecodeError

if TYPE_CHECKING:
    from ml.runtime import CascadeDetector

logger = logging.getLogger(__name__)

Done = TypeVar("Done")

# Cases a new non-safe window may still join; a dismissed or closed case stays closed.
MERGEABLE = (
    Case.Status.OPEN,
    Case.Status.UNDER_REVIEW,
    Case.Status.ESCALATED,
    Case.Status.REPORTED,
)


class SegmentConflict(ValidationError):
    """The camera already has a segment starting at that instant."""


# --- Stage 1: store a window --------------------------------------------------------------------


def cameras_analysis_paused(camera_ids: Collection[int]) -> set[int]:
    """Which of these cameras' sites have analysis paused (detection/retention.py)."""
    return set(
        Camera.objects.filter(
            pk__in=camera_ids, site__analysis_paused_at__isnull=False
        ).values_list("pk", flat=True)
    )


@dataclass
class NewWindow:
    """A window whose files are in storage and whose row is not yet written."""

    segment: Segment
    gated: bool
    deferred: bool
    analysis_frames: np.ndarray | None
    stored: list[str]

    def insert(self, *, camera_locked: bool = False) -> None:
        """Write the row (inside the caller's transaction) and queue the window on commit.
        `camera_locked`: this transaction already holds the camera's row lock."""
        segment = self.segment
        # A try that rolled back left the instance with the id it was given: start afresh.
        segment.pk = None
        segment._state.adding = True
        if Segment.objects.filter(
            camera_id=segment.camera_id, started_at=segment.started_at
        ).exists():
            raise SegmentConflict(
                f"Camera {segment.camera_id} already has footage starting at "
                f"{segment.started_at.isoformat()}."
            )
        _segment_check(segment)
        segment.save()
        if self.gated or self.deferred:
            # Triage will not see it soon (or ever): keep it with the cases around it.
            if not camera_locked:
                Camera.objects.select_for_update().filter(pk=segment.camera_id).first()
            segment_attach_to_nearby_cases(segment)
        else:
            segment_id, frames = segment.pk, self.analysis_frames
            transaction.on_commit(lambda: enqueue(segment_id, frames))

    def discard(self) -> None:
        """Remove the files of a window whose row was not written."""
        for name in self.stored:
            self.segment.original.storage.delete(name)


def segment_prepare(
    *,
    camera_id: int,
    started_at: dt.datetime,
    ended_at: dt.datetime,
    source: str,
    original: Path,
    preview: Path | None = None,
    preview_is_original: bool = False,
    motion_score: float | None = None,
    frame_count: int = 0,
    analysis_frames: np.ndarray | None = None,
    deferred: bool = False,
    original_sha256: str | None = None,
    analysis_paused: bool | None = None,
    move: bool = False,
) -> NewWindow:
    """Put a window's files in storage and build its row (`NewWindow.insert` writes it).

    `deferred`: ingestion was over capacity and did not decode the window; it is stored
    pending and deferred (detection.backpressure), for idle time to score from its original.

    Files land before the row, and are removed again (`NewWindow.discard`) if the row cannot
    be written, so no row points at a missing file and no file is left without a row.
    `original_sha256` and `analysis_paused` (the site's) spare the work when the caller knows
    them; `move`: the files are the caller's to give away, moved into storage, not copied."""
    segment = Segment(
        camera_id=camera_id,
        started_at=started_at,
        ended_at=ended_at,
        source=source,
        motion_score=motion_score,
        frame_count=frame_count,
        original_sha256=original_sha256 or file_sha256(original),
        original_size=original.stat().st_size,
    )
    gated = motion_score is not None and motion_score < settings.MOTION_GATE_THRESHOLD
    # Storage quota and legal minimum collided (detection/retention.py): keep recording, stop
    # analysing, until an operator adds space.
    if analysis_paused is None:
        analysis_paused = camera_id in cameras_analysis_paused({camera_id})
    gated = gated or analysis_paused
    segment.status = Segment.Status.SKIPPED if gated else Segment.Status.PENDING
    if gated:
        deferred = False
    elif deferred:
        segment.deferred_at = timezone.now()
    else:
        segment.queued_at = timezone.now()
        segment.analysis_attempts = 1
    new = NewWindow(segment, gated, deferred, analysis_frames, stored=[])
    stamp = f"{started_at:%H%M%S-%f}"

    def given(handle: BinaryIO, path: Path) -> File:  # type: ignore[type-arg]
        return _MovedFile(handle, path) if move else File(handle)

    try:
        with original.open("rb") as handle:
            segment.original.save(
                f"{stamp}-original{original.suffix}", given(handle, original), save=False
            )
        new.stored.append(str(segment.original.name))
        if preview is not None:
            with preview.open("rb") as handle:
                segment.preview.save(f"{stamp}-preview.mp4", given(handle, preview), save=False)
            new.stored.append(str(segment.preview.name))
        elif preview_is_original:
            # An H.264 MP4 with faststart already plays in browsers: one file serves both.
            segment.preview.name = segment.original.name
    except BaseException:
        new.discard()
        raise
    return new


class _MovedFile(File):  # type: ignore[type-arg]
    """A file Django's FileSystemStorage moves into place (file_move_safe: a rename on the same
    filesystem, else a copy and an unlink) instead of copying it through Python."""

    def __init__(self, handle: BinaryIO, path: Path) -> None:
        super().__init__(handle)
        self.path = path

    def temporary_file_path(self) -> str:
        return str(self.path)


def segment_create(
    *,
    camera_id: int,
    started_at: dt.datetime,
    ended_at: dt.datetime,
    source: str,
    original: Path,
    preview: Path | None = None,
    preview_is_original: bool = False,
    motion_score: float | None = None,
    frame_count: int = 0,
    analysis_frames: np.ndarray | None = None,
) -> Segment:
    """Store one window's files and its Segment row, then queue it for the model (an edge
    device's upload, a test's window; camera readers' windows go through
    `store_ingested_windows`). Windows whose motion score is below MOTION_GATE_THRESHOLD are
    stored as `skipped` and not queued.
    """
    new = segment_prepare(
        camera_id=camera_id,
        started_at=started_at,
        ended_at=ended_at,
        source=source,
        original=original,
        preview=preview,
        preview_is_original=preview_is_original,
        motion_score=motion_score,
        frame_count=frame_count,
        analysis_frames=analysis_frames,
    )
    try:
        with transaction.atomic():
            new.insert()
    except BaseException:
        new.discard()
        raise
    return new.segment


def _segment_check(segment: Segment) -> None:
    """A new window's values, checked without a query (every window of every camera passes
    here: at 32 cameras, 16 a second). full_clean would also read the camera back and run the
    end-after-start constraint as a SELECT; the camera was just named by its reader or its
    upload, the constraint is checked here in Python, and the database enforces both on insert
    all the same."""
    segment.clean_fields(exclude=["camera"])
    if segment.ended_at <= segment.started_at:
        raise ValidationError(
            {"ended_at": "A window must end after it starts."}, code="segment_ends_after_start"
        )


def _when(wall: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(wall, tz=dt.UTC)


@dataclass(frozen=True)
class RemuxedWindow:
    """A camera reader's closed window as files in a folder of its own, ready to be stored.

    Remuxed in the reader's thread: the packets refer to the reader's open input, which it
    closes when its session ends; the folder is removed once the window is stored (or not)."""

    camera_id: int
    folder: Path
    original: Path
    original_sha256: str
    preview: Path | None
    browser_playable: bool
    started_at: dt.datetime
    ended_at: dt.datetime
    motion_score: float | None
    frame_count: int
    analysis_frames: np.ndarray | None
    deferred: bool


def ingested_remux(config: CameraConfig, closed: SessionWindow) -> RemuxedWindow:
    """Write a reader's closed window to files: its original (and a preview if needed)."""
    window, info = closed.window, closed.info
    if len(window.frames) >= 2:
        motion: float | None = motion_score(window.frames)
        analysis_frames: np.ndarray | None = np.stack(window.frames)
    elif closed.undecoded or closed.shed:
        # Decoded in part, or not at all for capacity, by the reader: the worker decodes the
        # stored original instead.
        motion, analysis_frames = None, None
    else:
        # The reader's motion gate decoded nothing in it (a still scene): stored, not analysed.
        motion, analysis_frames = 0.0, None
    folder = Path(tempfile.mkdtemp(prefix="abusewatch-window-"))
    try:
        original = folder / f"original{info.original_suffix}"
        remux_packets(window.packets, info, original)
        preview: Path | None = None
        if not info.browser_playable:
            preview = folder / "preview.mp4"
            try:
                transcode_preview(original, preview, fps=settings.PREVIEW_TRANSCODE_FPS)
            except MediaError:
                logger.exception("camera %s: no preview for this window", config.camera_id)
                safe_unlink(preview)
                preview = None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return RemuxedWindow(
        camera_id=config.camera_id,
        folder=folder,
        original=original,
        # Hashed here, in the reader's thread: the shard's one writer thread has every other
        # reader's windows to store.
        original_sha256=file_sha256(original),
        preview=preview,
        browser_playable=info.browser_playable,
        started_at=_when(closed.wall_start),
        ended_at=_when(closed.wall_end),
        motion_score=motion,
        frame_count=max(window.source_frames, window.sent_frames),
        analysis_frames=analysis_frames,
        deferred=closed.shed,
    )


def store_ingested_window(config: CameraConfig, closed: SessionWindow) -> int:
    """One camera reader's closed window, stored (see `store_ingested_windows`); raises what
    storing it raised."""
    outcome = store_ingested_windows([ingested_remux(config, closed)])[0]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def store_ingested_windows(windows: Sequence[RemuxedWindow]) -> list[int | Exception]:
    """Readers' remuxed windows: each one's files put in storage, then all their rows in one
    transaction. Returns each window's segment id, or the error that kept it out; the
    windows' folders are removed either way.

    One transaction for a batch rather than one per window: under SQLite every transaction
    queues for the one write lock, and under PostgreSQL every commit waits for its WAL flush;
    at 96 cameras that was 48 a second. A window whose row is refused (a conflict, invalid
    values) is rolled back alone, to its savepoint. A transient database error (SQLite
    "database is locked" past its timeout, a broken PostgreSQL connection) rolls the batch
    back and the batch is tried again on a fresh connection: a camera's footage exists nowhere
    else. A window whose row is not written after the last try has its files removed.
    """
    outcomes: list[int | Exception] = []
    prepared: list[tuple[int, NewWindow]] = []
    try:
        # One query for the batch (a window each was a sixth of the writer's time at 96
        # cameras), retried as the rows are: the folders go with the batch when it raises.
        camera_ids = {remuxed.camera_id for remuxed in windows}
        paused = _retrying(
            "reading the sites' analysis pause", lambda: cameras_analysis_paused(camera_ids)
        )
        for index, remuxed in enumerate(windows):
            try:
                prepared.append((index, _remuxed_prepare(remuxed, remuxed.camera_id in paused)))
            except Exception as error:
                logger.exception("camera %s: could not store a window", remuxed.camera_id)
                outcomes.append(error)
            else:
                outcomes.append(-1)
    finally:
        for remuxed in windows:
            shutil.rmtree(remuxed.folder, ignore_errors=True)
    # Cameras in one order everywhere (as the stage-1 worker stores its batches), so two
    # processes that lock cameras for nearby cases never wait on each other in a circle.
    prepared.sort(key=lambda item: (item[1].segment.camera_id, item[1].segment.started_at))
    refused = _insert_retrying(prepared) if prepared else {}
    for index, new in prepared:
        if index in refused:
            new.discard()
            outcomes[index] = refused[index]
        else:
            outcomes[index] = new.segment.pk
    return outcomes


def _retrying(what: str, operation: Callable[[], Done]) -> Done:
    """`operation`, tried again on a fresh connection after a transient database error
    (INGEST_STORE_ATTEMPTS tries in all); the last try's error is raised."""
    attempts = max(1, settings.INGEST_STORE_ATTEMPTS)
    for attempt in range(1, attempts):
        try:
            return operation()
        except OperationalError as error:
            logger.warning("%s failed (%s), try %d of %d", what, error, attempt, attempts)
            connection.close()
            time.sleep(settings.INGEST_STORE_RETRY_SECONDS * attempt)
    return operation()


def _insert_retrying(prepared: Sequence[tuple[int, NewWindow]]) -> dict[int, Exception]:
    """Write the windows' rows in one transaction; returns the refused ones' errors by index."""
    try:
        return _retrying(f"storing {len(prepared)} window(s)", lambda: _insert(prepared))
    except OperationalError as error:
        return dict.fromkeys((index for index, _new in prepared), error)
    except BaseException:
        for _index, new in prepared:
            new.discard()
        raise


def _insert(prepared: Sequence[tuple[int, NewWindow]]) -> dict[int, Exception]:
    refused: dict[int, Exception] = {}
    # Cameras whose row lock this transaction holds: taken once, not once a window.
    locked: set[int] = set()
    with transaction.atomic():
        for index, new in prepared:
            camera_id = new.segment.camera_id
            try:
                with transaction.atomic():
                    new.insert(camera_locked=camera_id in locked)
            except (ValidationError, IntegrityError) as error:
                refused[index] = error
            else:
                if new.gated or new.deferred:
                    locked.add(camera_id)
    return refused


def _remuxed_prepare(remuxed: RemuxedWindow, analysis_paused: bool) -> NewWindow:
    return segment_prepare(
        camera_id=remuxed.camera_id,
        started_at=remuxed.started_at,
        ended_at=remuxed.ended_at,
        source=Segment.Source.INGEST,
        original=remuxed.original,
        preview=remuxed.preview,
        preview_is_original=remuxed.browser_playable,
        motion_score=remuxed.motion_score,
        frame_count=remuxed.frame_count,
        analysis_frames=remuxed.analysis_frames,
        deferred=remuxed.deferred,
        original_sha256=remuxed.original_sha256,
        analysis_paused=analysis_paused,
        move=True,
    )


# --- Stage 2: enqueue ---------------------------------------------------------------------------


def enqueue(segment_id: int, frames: np.ndarray | None) -> bool:
    """Hand a stored window to the inference queue (its decoded frames, if any, ride along).

    Never raises: the window is already stored and pending, so a broker that is down must not
    turn its upload or its camera reader into an error. The failure is logged and the
    reconciler (detection.reconcile) queues the window again once the broker is back.
    Returns whether the window reached the queue.
    """
    try:
        if frames is not None:
            inference.frames_put(segment_id, frames)
        inference.pending_push(segment_id)
        # By name: detection.tasks imports this module.
        signature("detection.analyse_segment", args=(segment_id,)).apply_async()
    except Exception as error:  # any broker client error: redis-py's, kombu's, OSError
        logger.warning(
            "window %s stored but not queued (%s); the reconciler will queue it again",
            segment_id,
            type(error).__name__,
        )
        return False
    return True


# --- Stage 3: score a batch ---------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    """One window's scores. `score` is the fused score triage bands (stage 1's own for a
    one-stage model); `stage2` is None where the gate stopped the window."""

    segment: Segment
    score: float
    preprocess_ms: float
    inference_ms: float
    batch_size: int
    stage1: float | None = None
    stage2: float | None = None
    stage2_ms: float | None = None
    # Why the gate passed the window but stage 2 did not score it ("" when it did, or the
    # gate stopped the window): see detection.backpressure.
    stage2_skipped: str = Stage2Skipped.NO


@dataclass(frozen=True)
class Gated:
    """A window stage 1 scored and the gate let through, for the pose queue to finish."""

    segment: Segment
    stage1: float
    preprocess_ms: float
    inference_ms: float
    batch_size: int


def _analysis_frames(segment: Segment, spec: InputSpec) -> np.ndarray:
    """The window's frames at the model's rate and size: the reader's (or edge upload's) copy
    left in Redis, else the stored original decoded as `ml.evaluate` decodes a file."""
    frames = inference.frames_get(segment.pk)
    if frames is None or frames.ndim != 4 or frames.shape[1:3] != (spec.height, spec.width):
        frames = np.stack(inference.frames_decode(Path(segment.original.path), spec=spec))
    if len(frames) < 2:
        raise ValueError(f"the window holds {len(frames)} frame(s); at least 2 are needed")
    return frames


def stage2_score(detector: CascadeDetector, segment: Segment) -> tuple[float | None, float]:
    """Stage 2 (pose) of a gated window on the full-size frames of its stored original, read
    as `ml.evaluate` reads a file; (None, ms) when they cannot be read (the window then keeps
    stage 1's path, as the cascade does for a window pose cannot read)."""
    began = time.perf_counter()
    try:
        score: float | None = detector.score_stage2_file(Path(segment.original.path))
    except (VideoDecodeError, ValueError, OSError) as error:
        logger.warning("segment %s: stage 2 could not read the window: %s", segment.pk, error)
        score = None
    elapsed = time.perf_counter() - began
    if score is not None and math.isfinite(score):
        # A window it could not read says nothing of what a readable one costs.
        backpressure.stage2_cost_record(elapsed)
    else:
        score = None
    return score, elapsed * 1000


def score_batch_split(
    version: ModelVersion, segments: Sequence[Segment], *, stage2_here: bool = True
) -> tuple[list[Scored], list[Gated]]:
    """Score windows through the model version's cascade exactly as `ml.evaluate` scores a
    clip (`CascadeDetector.score_clips`): stage 1 in one model call over every window, the
    gate, stage 2 on the full-size frames of the windows it passes, the card's fusion.

    With `stage2_here=False` the windows that pass the gate come back as `Gated` (for the
    pose queue) instead of being scored here. Windows whose footage cannot be read are marked
    failed and left out.

    Admission control (detection.backpressure.stage2_admit): a gated window stage 2 could not
    score in time is decided on stage 1 alone, here or instead of going to the pose queue,
    with `stage2_skipped = "over_capacity"`. Run here, stage 2 also yields to the windows
    waiting behind the batch (`backpressure.stage2_may_run_here`). That is checked before
    each window's pose check.
    """
    batch_began = time.monotonic()
    detector = inference.detector_for(
        version.artifact_path, card=version.card, with_stage2=stage2_here
    )
    clips: list[np.ndarray] = []
    ready: list[tuple[Segment, float]] = []
    for segment in segments:
        began = time.perf_counter()
        try:
            clips.append(_analysis_frames(segment, detector.spec))
        except (VideoDecodeError, ValueError, OSError) as error:
            segment_mark_failed(segment_id=segment.pk, reason=str(error))
            continue
        ready.append((segment, (time.perf_counter() - began) * 1000))
    if not ready:
        return [], []
    began = time.perf_counter()
    stage1 = detector.score_stage1_clips(clips)
    inference_ms = (time.perf_counter() - began) * 1000
    passes = detector.gate_passes(stage1)
    admitted = backpressure.stage2_admit(
        [segment for (segment, _), passed in zip(ready, passes, strict=True) if passed]
    )
    scored: list[Scored] = []
    gated: list[Gated] = []
    batch_ids = {segment.pk for segment in segments}
    for (segment, preprocess_ms), s1, passed in zip(ready, stage1, passes, strict=True):
        s2: float | None = None
        s2_ms: float | None = None
        skipped = Stage2Skipped.NO
        if passed and segment.pk not in admitted:
            skipped = Stage2Skipped.OVER_CAPACITY
        elif passed and not stage2_here:
            gated.append(Gated(segment, float(s1), preprocess_ms, inference_ms, len(ready)))
            continue
        elif passed and not backpressure.stage2_may_run_here(
            batch_ids, elapsed_seconds=time.monotonic() - batch_began
        ):
            # Stage 2 here runs in the worker that scores stage 1, and each pose check holds
            # up every window stored meanwhile (see backpressure.stage2_may_run_here).
            skipped = Stage2Skipped.OVER_CAPACITY
        elif passed:
            s2, s2_ms = stage2_score(detector, segment)
            skipped = Stage2Skipped.UNREADABLE if s2 is None else Stage2Skipped.NO
        result = detector.fuse(float(s1), s2)
        scored.append(
            Scored(
                segment,
                result.fused,
                preprocess_ms,
                inference_ms,
                len(ready),
                stage1=result.stage1,
                stage2=result.stage2,
                stage2_ms=s2_ms,
                stage2_skipped=skipped,
            )
        )
    return scored, gated


def score_batch(version: ModelVersion, segments: Sequence[Segment]) -> list[Scored]:
    """Score windows through the whole cascade in this process (see `score_batch_split`)."""
    scored, _ = score_batch_split(version, segments, stage2_here=True)
    return scored


def segments_analyse(*, segment_ids: list[int], deferred: bool = False) -> list[Detection]:
    """Score the still unscored windows among `segment_ids` in one model call, then triage each.

    Idempotent: windows that already have a detection by the active model are left alone, so a
    redelivered or duplicate task does nothing. With INFERENCE_POSE_QUEUE set, windows the
    gate passes are finished by `detection.score_stage2` on that queue instead; until then
    they are pending, and a task that finds them already sent there (`inference.stage2_claim`)
    leaves them out too.

    Backpressure (detection.backpressure): windows stored longer than INFERENCE_MAX_LAG_SECONDS
    ago are first marked deferred and left out; `deferred=True` scores deferred windows
    instead (idle time, `deferred_catch_up`).
    """
    wanted = list(dict.fromkeys(segment_ids))
    if not Segment.objects.filter(pk__in=wanted, status=Segment.Status.PENDING).exists():
        # Each window queues a task, and the first of a batch's tasks scores the others too:
        # most tasks find their window done. One query answers them, not the three below.
        return []
    version = model_version_active()
    if not deferred:
        backpressure.defer_stale()
    todo = list(
        Segment.objects.filter(
            pk__in=wanted, status=Segment.Status.PENDING, deferred_at__isnull=not deferred
        )
        .exclude(detections__model_version=version)
        .select_related("camera")
        .order_by("started_at")
    )
    if todo:
        claimed = inference.stage2_claimed([segment.pk for segment in todo])
        todo = [segment for segment in todo if segment.pk not in claimed]
    if not todo:
        return []
    pose_queue = bool(settings.INFERENCE_POSE_QUEUE)
    scored, gated = score_batch_split(version, todo, stage2_here=not pose_queue)
    detections = []
    # The batch's windows in one transaction: one wait for the write lock, not one a window.
    # On SQLite beside the ingest shards' writes (64 cameras, 32 windows a second) those waits
    # were 40 % of the time spent storing (py-spy) and the worker fell behind with cores to
    # spare. A window that fails to store rolls the batch back; its task is retried or the
    # reconciler queues the windows again, and storing is idempotent. Camera by camera, each
    # in time order, so two workers' batches take the cameras' locks in the same order.
    with transaction.atomic():
        for item in sorted(
            scored, key=lambda item: (item.segment.camera_id, item.segment.started_at)
        ):
            detection = detection_store(scored=item, version=version)
            if detection is not None:
                detections.append(detection)
    for waiting in gated:
        if not inference.stage2_claim(waiting.segment.pk):
            continue  # already on the pose queue (sent by another task's batch)
        # By name, routed to INFERENCE_POSE_QUEUE (settings.CELERY_TASK_ROUTES).
        signature(
            STAGE2_TASK,
            kwargs={
                "segment_id": waiting.segment.pk,
                "version_id": version.pk,
                "stage1": waiting.stage1,
                "preprocess_ms": waiting.preprocess_ms,
                "inference_ms": waiting.inference_ms,
                "batch_size": waiting.batch_size,
            },
        ).apply_async()
    inference.frames_forget([item.segment.pk for item in scored])
    inference.frames_forget([item.segment.pk for item in gated])
    return detections


def deferred_catch_up(*, limit: int | None = None) -> list[Detection]:
    """Idle time: score the oldest deferred windows (one batch) unless fresh windows wait on
    the pending list, which always go first. Returns the detections made."""
    if backpressure.fresh_work_waiting():
        return []
    oldest = backpressure.deferred_oldest(limit or settings.INFERENCE_BATCH_MAX)
    if not oldest:
        return []
    return segments_analyse(segment_ids=oldest, deferred=True)


STAGE2_TASK = "detection.score_stage2"


def segment_finish_stage2(
    *,
    segment_id: int,
    version_id: int,
    stage1: float,
    preprocess_ms: float,
    inference_ms: float,
    batch_size: int,
) -> Detection | None:
    """The pose queue's half of a gated window: stage 2, the fusion, then triage as usual.
    Idempotent (a window already scored by this version is left alone)."""
    version = ModelVersion.objects.get(pk=version_id)
    segment = Segment.objects.select_related("camera").filter(pk=segment_id).first()
    if segment is None or segment.status != Segment.Status.PENDING:
        return None
    detector = inference.detector_for(version.artifact_path, card=version.card, with_stage2=True)
    s2: float | None = None
    s2_ms: float | None = None
    # The pose queue fell behind since the window was sent: decide it now on stage 1 alone
    # rather than late (detection.backpressure). The queue's depth is not counted again: this
    # task is the one that waited in it.
    if _stage2_in_time(segment):
        s2, s2_ms = stage2_score(detector, segment)
        skipped = Stage2Skipped.UNREADABLE if s2 is None else Stage2Skipped.NO
    else:
        skipped = Stage2Skipped.OVER_CAPACITY
    result = detector.fuse(stage1, s2)
    scored = Scored(
        segment,
        result.fused,
        preprocess_ms,
        inference_ms,
        batch_size,
        stage1=result.stage1,
        stage2=result.stage2,
        stage2_ms=s2_ms,
        stage2_skipped=skipped,
    )
    return detection_store(scored=scored, version=version)


def _stage2_in_time(segment: Segment) -> bool:
    age = backpressure.age_seconds(segment, timezone.now())
    cost = backpressure.stage2_cost_seconds()
    return age + cost <= settings.INFERENCE_STAGE2_MAX_LAG_SECONDS


# --- Stage 4 and 5: triage, then apply the decision ---------------------------------------------


def _open_cases(camera_id: int, *, window_start: dt.datetime) -> list[OpenCase]:
    """The camera's cases a window may join, and those whose ended span it may follow up."""
    # Locked: the caller holds the camera's lock, and these rows may change. Whether a case
    # was reported is read apart: PostgreSQL cannot lock across the outer join to its report.
    gap = dt.timedelta(seconds=settings.CASE_MERGE_GAP_SECONDS)
    followable = Q(
        span_end_reason__in=[Case.SpanEnd.REPORTED, Case.SpanEnd.MAX_LENGTH],
        ended_at__gte=window_start - gap,
    )
    cases = list(
        Case.objects.select_for_update()
        .filter(camera_id=camera_id, status__in=MERGEABLE)
        .filter(Q(span_ended_at__isnull=True) | followable)
        .values_list(
            "pk", "started_at", "ended_at", "peak_score", "band", "span_ended_at", "follows_id"
        )
    )
    reported = set(
        Case.objects.filter(
            pk__in=[row[0] for row in cases] + [row[6] for row in cases if row[6]],
            police_report__isnull=False,
        ).values_list("pk", flat=True)
    )
    return [
        OpenCase(
            pk,
            started,
            ended,
            peak,
            band,
            reported=pk in reported,
            span_ended=span_ended_at is not None,
            follows_reported=follows_id in reported,
        )
        for pk, started, ended, peak, band, span_ended_at, follows_id in cases
    ]


def detection_store(*, scored: Scored, version: ModelVersion) -> Detection | None:
    """Record one score, triage it and apply the decision, all or nothing.

    None when it was already recorded. One camera's windows are triaged one at a time,
    whichever worker scored them: the camera's row lock is held throughout.
    """
    segment = scored.segment
    with transaction.atomic():
        # The lock and the camera's thresholds in one read: they are read under the lock, so a
        # threshold an admin just changed applies to the next window. The window's own row is
        # the one the batch read (its times never change); whether it was already recorded is
        # asked under the lock just below.
        camera = Camera.objects.select_for_update().get(pk=segment.camera_id)
        segment.camera = camera
        if Detection.objects.filter(segment=segment, model_version=version).exists():
            return None
        thresholds = thresholds_for(
            camera_low=camera.low_threshold,
            camera_high=camera.high_threshold,
            model_low=version.low_threshold,
            model_high=version.high_threshold,
        )
        decision = triage(
            thresholds=thresholds,
            open_cases=_open_cases(camera.pk, window_start=segment.started_at),
            window=ScoredWindow(segment.pk, segment.started_at, segment.ended_at, scored.score),
            merge_gap=dt.timedelta(seconds=settings.CASE_MERGE_GAP_SECONDS),
            post_roll=_rolls()[1],
            max_length=dt.timedelta(seconds=settings.CASE_MAX_SECONDS),
        )
        detection = Detection(
            segment=segment,
            model_version=version,
            score=min(1.0, max(0.0, scored.score)),
            band=decision.band,
            low_threshold=thresholds.low,
            high_threshold=thresholds.high,
            stage1_score=scored.stage1,
            stage2_score=scored.stage2,
            preprocess_ms=round(scored.preprocess_ms, 3),
            inference_ms=round(scored.inference_ms, 3),
            stage2_ms=None if scored.stage2_ms is None else round(scored.stage2_ms, 3),
            stage2_skipped=scored.stage2_skipped,
            batch_size=scored.batch_size,
        )
        # Field values only: full_clean would also query both foreign keys and both
        # constraints (four queries a window, on the inference worker's hot path), facts this
        # transaction has just read under the camera's lock or clamped, and the database
        # enforces the constraints on insert all the same.
        detection.clean_fields(exclude=["segment", "model_version"])
        detection.save()
        Segment.objects.filter(pk=segment.pk).update(status=Segment.Status.ANALYSED)
        case = apply_decision(decision, segment=segment, score=scored.score)
        broadcast_detection(detection, case=case)
    return detection


def apply_decision(decision: Decision, *, segment: Segment, score: float) -> Case | None:
    """Carry out triage's decision: end spans, open or extend the case, attach footage, report."""
    for closing in decision.closings:
        case_end_span(case_id=closing.case_id, reason=closing.reason, at=segment.started_at)
    if decision.action == Action.NOTHING:
        return None
    if decision.action == Action.ATTACH:
        assert decision.case_id is not None, "triage attaches to a case it names"
        Case.objects.get(pk=decision.case_id).segments.add(segment)
        return None
    assert decision.started_at is not None and decision.ended_at is not None, "a case has a span"
    if decision.action == Action.OPEN:
        case = Case(
            camera_id=segment.camera_id,
            started_at=decision.started_at,
            ended_at=decision.ended_at,
            peak_score=decision.peak_score,
            band=decision.case_band,
            follows_id=decision.follows_id,
        )
        case.full_clean()
        case.save()
        _attach_footage(case)
        _queue_working_copies(case)
        audit_record(
            actor=None,
            action="case.open",
            target=case,
            details={
                "band": case.band,
                "score": score,
                "segment": segment.pk,
                "follows": decision.follows_id,
            },
        )
        if decision.report:
            # The alert goes out once the police report exists (see reports.tasks).
            case_request_report(case=case, announce="case.alert")
        else:
            broadcast_case(case)
        return case
    assert decision.case_id is not None, "triage extends a case it names"
    case = Case.objects.get(pk=decision.case_id)
    previous_band = case.band
    case.started_at = decision.started_at
    case.ended_at = decision.ended_at
    case.peak_score = decision.peak_score
    case.band = decision.case_band
    case.save(update_fields=["started_at", "ended_at", "peak_score", "band", "updated_at"])
    _attach_footage(case)
    _queue_working_copies(case)
    if decision.upgraded:
        audit_record(
            actor=None,
            action="case.upgrade",
            target=case,
            details={"from": previous_band, "score": score, "segment": segment.pk},
        )
    if decision.report:
        case_request_report(case=case, announce="case.status")
    elif case.band != previous_band:
        broadcast_case(case, event="case.status")
    return case


# Reports makes the blurred working copies experts and police watch; queued by name on
# commit (detection never imports reports), so the first viewer does not wait for them.
MAKE_WORKING_COPIES_TASK = "reports.make_working_copies"


def _queue_working_copies(case: Case) -> None:
    if not settings.WORKING_COPIES_AHEAD:
        return
    case_id = case.pk

    def queue() -> None:
        if not inference.working_copies_claim(case_id):
            return  # a task for this case is queued and not started: it will see this window
        try:
            signature(MAKE_WORKING_COPIES_TASK, kwargs={"case_id": case_id}).apply_async()
        except BaseException:
            inference.working_copies_started(case_id)  # not queued: the next window tries
            raise

    transaction.on_commit(queue)


def case_request_report(*, case: Case, announce: str) -> None:
    """Record that a violent case must reach the police; reports sends it after commit."""
    if case.status == Case.Status.UNDER_REVIEW:
        # An expert was still looking at it as uncertain; the model is now sure enough.
        details = {"reason": "violent window", "peak_score": case.peak_score}
        case_transition(case=case, to=Case.Status.ESCALATED, actor=None, details=details)
    case_id = case.pk
    transaction.on_commit(
        lambda: signature(
            REPORT_CASE_TASK, kwargs={"case_id": case_id, "reason": "violent", "announce": announce}
        ).apply_async()
    )


# --- Footage around a case ----------------------------------------------------------------------


def _rolls() -> tuple[dt.timedelta, dt.timedelta]:
    """How much footage a case keeps before its first and after its last non-safe window."""
    return (
        dt.timedelta(seconds=settings.CASE_PRE_ROLL_SECONDS),
        dt.timedelta(seconds=settings.CASE_POST_ROLL_SECONDS),
    )


def _attach_footage(case: Case) -> None:
    pre, post = _rolls()
    footage = Segment.objects.filter(
        camera_id=case.camera_id,
        ended_at__gt=case.started_at - pre,
        started_at__lt=case.ended_at + post,
    ).exclude(status=Segment.Status.PURGED)
    # Ids only: a case grows by every non-safe window, and each time its whole span is read.
    case.segments.add(*footage.values_list("pk", flat=True))


def segment_attach_to_nearby_cases(segment: Segment) -> None:
    """Keep a window triage never sees with the cases whose pre- or post-roll it falls in.

    Motion-gated windows and windows whose analysis failed get no detection, so triage never
    attaches them; without this the footage just after an incident was not under its case's
    legal hold and retention erased it. The caller holds the camera's row lock, as triage
    does, so a case opened at the same time either sees this window or is seen by it.
    """
    pre, post = _rolls()
    for case in Case.objects.filter(
        camera_id=segment.camera_id,
        started_at__lt=segment.ended_at + pre,
        ended_at__gt=segment.started_at - post,
    ):
        case.segments.add(segment)


def segment_mark_failed(*, segment_id: int, reason: str) -> None:
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is not None:
        with transaction.atomic():
            # The camera's lock first, in the order triage takes its locks.
            Camera.objects.select_for_update().filter(pk=segment.camera_id).first()
            Segment.objects.filter(pk=segment_id, status=Segment.Status.PENDING).update(
                status=Segment.Status.FAILED, status_reason=reason[:300]
            )
            segment_attach_to_nearby_cases(segment)
    audit_record(
        actor=None,
        action="segment.analysis_failed",
        target=segment,
        outcome="failed",
        details={"reason": reason[:300]},
    )


__all__ = ["Band", "SegmentConflict", "segment_create", "segments_analyse"]
