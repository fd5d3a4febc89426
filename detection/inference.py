"""The inference worker's side of the model: one detector per process, frames, the pending list.

Batching: every stored window gets its own `analyse_segment` task (so no window is ever lost:
a message stays in the broker until a worker acks it after scoring) AND its id is pushed on a
Redis list. A task pops up to INFERENCE_BATCH_MAX - 1 more ids from that list and scores them
all in one model call. Tasks whose window was already scored by another task's batch find a
Detection and return at once (one query when the list is empty). Under load the list fills
while the model runs, so batches grow with the load; when idle, a batch is one window and
latency is one model call.

Order: the list is drained from its tail, newest first. Celery delivers the messages oldest
first, so each task scores its own (oldest) window, if still unscored and not deferred, with
the newest ones waiting: under a backlog, fresh windows keep a bounded latency while the old
ones are deferred to idle time (detection.backpressure).

Frames: the ingestion process has already decoded each window and resized the analysis frames
to the model size; it leaves them in Redis (uint8, ~200 kB a window, with a TTL) so the worker
does not decode the video again. When they are missing (expired, another model size, a
re-analysis) the worker decodes the stored original.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.db import DatabaseError

from alerts.live import redis_py_url
from detection.models import ModelVersion

if TYPE_CHECKING:
    from ml.input_spec import InputSpec
    from ml.model_card import ModelCard
    from ml.runtime import CascadeDetector

logger = logging.getLogger(__name__)

_detectors: dict[tuple[str, str | None, bool], CascadeDetector] = {}
_detector_lock = threading.Lock()
_local_store: dict[str, bytes] = {}
_local_pending: list[int] = []
_redis: Any = None


def redis_client() -> Any:
    """A client for the pipeline's Redis, or None in the one-process setup without Redis."""
    global _redis
    url = settings.REDIS_URL
    if not url:
        return None
    if _redis is None:
        import redis

        _redis = redis.Redis.from_url(redis_py_url(url))
    return _redis


def _key(*parts: object) -> str:
    return ":".join([settings.PIPELINE_REDIS_PREFIX, *map(str, parts)])


def pending_key() -> str:
    return _key("inference", "pending")


def frames_put(segment_id: int, frames: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(frames, dtype=np.uint8), allow_pickle=False)
    client = redis_client()
    if client is None:
        _local_store[str(segment_id)] = buffer.getvalue()
        return
    client.set(
        _key("frames", segment_id), buffer.getvalue(), ex=settings.INFERENCE_FRAMES_TTL_SECONDS
    )


def frames_get(segment_id: int) -> np.ndarray | None:
    client = redis_client()
    raw = (
        _local_store.get(str(segment_id))
        if client is None
        else client.get(_key("frames", segment_id))
    )
    if not raw:
        return None
    frames: np.ndarray = np.load(io.BytesIO(raw), allow_pickle=False)
    return frames


def frames_forget(segment_ids: list[int]) -> None:
    client = redis_client()
    if client is None:
        for segment_id in segment_ids:
            _local_store.pop(str(segment_id), None)
    elif segment_ids:
        client.delete(*[_key("frames", segment_id) for segment_id in segment_ids])


def stage2_claim(segment_id: int) -> bool:
    """Whether this task is the one to hand the window to the pose queue (True the first time
    in a while, then False).

    A window the gate passes stays pending until the pose worker stores its detection, so the
    window's own `analyse_segment` message, or another worker's batch that drained its id,
    picks it up again. Those read the mark first (`stage2_claimed`) and leave it out; one that
    scored stage 1 at the same time as the first would send it to the pose queue a second time:
    pose then runs twice on two pose workers (or hosts), and the queue's depth, which admission
    control reads as stage-2 backlog (detection.backpressure), counts the window twice. The
    mark expires within half the reconciler's requeue delay, so a window whose pose message was
    lost (Redis restarted) is sent again when the reconciler queues it again.
    """
    client = redis_client()
    if client is None:
        return True  # one process, tasks run eagerly: the first send finished the window
    ttl = max(1, int(settings.PENDING_REQUEUE_AFTER_SECONDS / 2))
    return bool(client.set(_stage2_sent_key(segment_id), 1, nx=True, ex=ttl))


def stage2_claimed(segment_ids: Sequence[int]) -> set[int]:
    """Which of these windows a task already sent to the pose queue (`stage2_claim`'s mark is
    set): stage 1 need not score them again. One round trip for all of them."""
    client = redis_client()
    if client is None or not segment_ids:
        return set()
    try:
        marks = client.mget([_stage2_sent_key(segment_id) for segment_id in segment_ids])
    except Exception as error:  # scored again at worst; `stage2_claim` still sends them once
        logger.warning("pose-queue marks unknown (%s)", type(error).__name__)
        return set()
    return {
        segment_id for segment_id, mark in zip(segment_ids, marks, strict=True) if mark is not None
    }


def _stage2_sent_key(segment_id: int) -> str:
    return _key("stage2-sent", segment_id)


# How long a case's queued working-copies task holds back the next one (see below) if it never
# starts (its message lost): then the next window of the case queues one again.
WORKING_COPIES_MARK_SECONDS = 120


def working_copies_claim(case_id: int) -> bool:
    """Whether to queue the working copies of a case that just grew: not while a task for it
    is queued and has not started, since that task will read every window attached by then.

    A case grows by each non-safe window, a window every 2 s of each camera; without this each
    one queued a task, and the media worker then listed the whole case's footage for every one.
    The task clears the mark as it starts (`working_copies_started`), before it reads the
    case's windows, so a window attached after that read queues the next task. Without Redis,
    or when it fails, always True: a task too many costs a query, a missing copy costs a wait.
    """
    client = redis_client()
    if client is None:
        return True
    try:
        return bool(
            client.set(
                _key("working-copies-queued", case_id), 1, nx=True, ex=WORKING_COPIES_MARK_SECONDS
            )
        )
    except Exception as error:
        logger.warning("working copies of case %s: mark unknown (%s)", case_id, error)
        return True


def working_copies_started(case_id: int) -> None:
    """The case's working-copies task starts: the next window of the case queues another."""
    client = redis_client()
    if client is None:
        return
    try:
        client.delete(_key("working-copies-queued", case_id))
    except Exception as error:
        logger.warning("working copies of case %s: mark not cleared (%s)", case_id, error)


def pending_push(segment_id: int) -> None:
    client = redis_client()
    if client is None:
        _local_pending.append(segment_id)
    else:
        client.rpush(pending_key(), segment_id)


def pending_drain(limit: int) -> list[int]:
    """Take up to `limit` waiting segment ids, newest first (see the module's docstring)."""
    if limit <= 0:
        return []
    client = redis_client()
    if client is None:
        taken = _local_pending[-limit:][::-1]
        del _local_pending[-limit:]
        return taken
    raw = client.rpop(pending_key(), limit) or []
    return [int(value) for value in raw]


def pending_newest(limit: int) -> list[int]:
    """Up to `limit` waiting ids, newest first, left on the list ([] when Redis cannot say)."""
    if limit <= 0:
        return []
    client = redis_client()
    if client is None:
        return _local_pending[-limit:][::-1]
    try:
        raw = client.lrange(pending_key(), -limit, -1)
    except Exception as error:
        logger.warning("pending list unknown (%s)", type(error).__name__)
        return []
    return [int(value) for value in reversed(raw)]


def pending_length() -> int:
    """Ids waiting on the pending list (0 when Redis cannot say: idle work then runs, which
    costs a batch's latency at worst)."""
    client = redis_client()
    if client is None:
        return len(_local_pending)
    try:
        return int(client.llen(pending_key()))
    except Exception as error:
        logger.warning("pending list length unknown (%s)", type(error).__name__)
        return 0


def detector_for(
    artifact_path: str, *, card: dict[str, Any] | None = None, with_stage2: bool = True
) -> CascadeDetector:
    """The loaded model version of an artifact folder (any card: one CNN or the cascade), loaded
    once per worker process. `card`: the card the ModelVersion row was registered with, so an
    old schema-1 row whose folder now holds the cascade is still served as what it was.
    `with_stage2=False` loads stage 1 alone, for a worker that sends gated windows to the pose
    queue. Raises ml.runtime.ModelFilesError naming a missing or altered file."""
    version = None if not card else str(card.get("version", ""))
    key = (artifact_path, version, with_stage2)
    with _detector_lock:
        detector = _detectors.get(key)
        if detector is None:
            logger.info("loading model %s from %s", version or "(folder's own)", artifact_path)
            detector = _load_detector(Path(artifact_path), card, with_stage2=with_stage2)
            _detectors[key] = detector
        return detector


# The schema-1 card of a cascade's stage 1, kept next to it when the cascade replaced it.
STAGE1_CARD_FILE = "stage1_card.json"


def _load_detector(
    folder: Path, stored: dict[str, Any] | None, *, with_stage2: bool
) -> CascadeDetector:
    from ml.model_card import ModelCard, ModelCardError
    from ml.runtime import (
        CascadeDetector,
        ModelFilesError,
        ViolenceDetector,
        limit_tensorflow_threads,
    )

    if not limit_tensorflow_threads(settings.INFERENCE_TF_THREADS):
        logger.warning(
            "INFERENCE_TF_THREADS=%s not applied: TensorFlow was started before the model",
            settings.INFERENCE_TF_THREADS,
        )
    detector = CascadeDetector.load(folder, with_stage2=with_stage2, pose_threads=1)
    if not stored or stored.get("version") == detector.version:
        return detector
    # The row was registered from this folder before another version replaced it there: the
    # shipped default was one CNN, which the cascade keeps as its stage 1 (same model.keras,
    # checked against the folder's card above) with its own card as stage1_card.json.
    try:
        old = ModelCard.from_dict(stored)
    except ModelCardError as error:
        raise ModelFilesError(f"model version {stored.get('version')}: {error}") from error
    stage1_card = _read_stage1_card(folder)
    if old.is_cascade or stage1_card is None or stage1_card.version != old.version:
        raise ModelFilesError(
            f"{folder} no longer holds model version {old.version} (it holds {detector.version})"
        )
    stage1 = detector.stage1
    assert isinstance(stage1, ViolenceDetector)
    return CascadeDetector(old, stage1, None)


def _read_stage1_card(folder: Path) -> ModelCard | None:
    import json

    from ml.model_card import ModelCard, ModelCardError

    path = folder / STAGE1_CARD_FILE
    try:
        return ModelCard.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ModelCardError):
        return None


_files_checked: dict[str, tuple[tuple[tuple[str, int, int], ...], str | None]] = {}


def _files_signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    from ml.runtime import default_model_dir

    pose_folder = default_model_dir().parent / "pose"
    found = []
    for path in sorted([*folder.glob("*"), *pose_folder.glob("*")]):
        try:
            info = path.stat()
        except OSError:
            continue
        found.append((str(path), info.st_mtime_ns, info.st_size))
    return tuple(found)


def model_files_problem(artifact_dir: str | Path) -> str | None:
    """Why the model version in `artifact_dir` cannot be served (its card, a stage's file or
    the pose model missing or altered: the message names the file), or None.

    Hashing the files costs tens of ms; the answer is kept until a file there changes its
    size or modification time, so /healthz can ask on every probe.
    """
    from ml.runtime import ModelFilesError, check_model_files

    folder = Path(artifact_dir)
    signature = _files_signature(folder)
    cached = _files_checked.get(str(folder))
    if cached is not None and cached[0] == signature:
        return cached[1]
    try:
        check_model_files(folder)
        problem = None
    except ModelFilesError as error:
        problem = str(error)
    _files_checked[str(folder)] = (signature, problem)
    return problem


def served_model_dir() -> Path:
    """The artifact folder the inference workers serve: the active model version's, else the
    shipped default (which the first window registers)."""
    try:
        version = ModelVersion.objects.filter(is_active=True).only("artifact_path").first()
    except DatabaseError:
        version = None
    return Path(version.artifact_path) if version is not None else Path(settings.DEFAULT_MODEL_DIR)


def model_queues() -> set[str]:
    """The queues whose workers hold the model: `inference`, and the pose queue if set."""
    return {
        "inference",
        *([settings.INFERENCE_POSE_QUEUE] if settings.INFERENCE_POSE_QUEUE else []),
    }


def worker_start_check(queues: set[str]) -> None:
    """Run as a worker starts: one that consumes a model queue refuses to start (SystemExit
    with a message naming the file) when the model it would serve is missing or altered;
    scoring with other files than the bands were chosen for gives numbers that mean nothing."""
    if not queues & model_queues():
        return
    folder = served_model_dir()
    problem = model_files_problem(folder)
    if problem is not None:
        message = f"inference worker refuses to start: model {folder} is not servable: {problem}"
        logger.critical(message)
        raise SystemExit(message)


def worker_preload(queues: set[str]) -> None:
    """Run as a worker starts, after `worker_start_check`: load the model it will serve before
    it takes its first window, and before it beats (abusewatch.heartbeat), so a beating worker
    can score. Loaded lazily, the first windows after a (re)start waited for TensorFlow and the
    model (about 8 s on a 2-core box, 20-30 s while ingestion starts beside it) and the queue
    behind them grew for that long; the first batch also traced the compiled forward pass
    (`warm_up`). A failure here is logged and left to the first window."""
    pose_queue = settings.INFERENCE_POSE_QUEUE
    scores_stage1 = "inference" in queues
    finishes_stage2 = bool(pose_queue) and pose_queue in queues
    if not scores_stage1 and not finishes_stage2:
        return
    from detection.model_versions import model_version_active
    from ml.runtime import ViolenceDetector

    try:
        version = model_version_active()
        if scores_stage1:
            # Stage 1 alone when a pose worker finishes the cascade.
            detector = detector_for(
                version.artifact_path, card=version.card, with_stage2=not pose_queue
            )
            if isinstance(detector.stage1, ViolenceDetector):
                detector.stage1.warm_up()
        if finishes_stage2:
            detector_for(version.artifact_path, card=version.card, with_stage2=True)
    except Exception:
        logger.exception("model not loaded at start; the first window will load it")


def frames_decode(path: Path, *, spec: InputSpec) -> list[np.ndarray]:
    """Frames of a stored clip at the model's rate and size, decoded as `ml.evaluate` decodes a
    file (`ml.frames` sampling, `ml.video.model_frame` as each frame is decoded), for windows
    whose cached frames are gone."""
    from ml.video import decode_frames

    return decode_frames(path, fps=spec.fps, spec=spec)
