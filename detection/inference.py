"""The inference worker's side of the model: one detector per process, frames, the pending list.

Batching: every stored window gets its own `analyse_segment` task (so no window is ever lost:
a message stays in the broker until a worker acks it after scoring) AND its id is pushed on a
Redis list. A task pops up to INFERENCE_BATCH_MAX - 1 more ids from that list and scores them
all in one model call. Tasks whose window was already scored by another task's batch find a
Detection and return at once. Under load the list fills while the model runs, so batches grow
with the load; when idle, a batch is one window and latency is one model call.

Frames: the ingestion process has already decoded each window and resized the analysis frames
to the model size; it leaves them in Redis (uint8, ~200 kB a window, with a TTL) so the worker
does not decode the video again. When they are missing (expired, another model size, a
re-analysis) the worker decodes the stored original.
"""

from __future__ import annotations

import io
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings

from alerts.live import redis_py_url

if TYPE_CHECKING:
    from ml.runtime import ViolenceDetector

logger = logging.getLogger(__name__)

_detectors: dict[str, ViolenceDetector] = {}
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


def pending_push(segment_id: int) -> None:
    client = redis_client()
    if client is None:
        _local_pending.append(segment_id)
    else:
        client.rpush(pending_key(), segment_id)


def pending_drain(limit: int) -> list[int]:
    """Take up to `limit` waiting segment ids, oldest first."""
    if limit <= 0:
        return []
    client = redis_client()
    if client is None:
        taken = _local_pending[:limit]
        del _local_pending[:limit]
        return taken
    raw = client.lpop(pending_key(), limit) or []
    return [int(value) for value in raw]


def detector_for(artifact_path: str) -> ViolenceDetector:
    """The loaded model of an artifact folder, loaded once per worker process."""
    with _detector_lock:
        detector = _detectors.get(artifact_path)
        if detector is None:
            from ml.runtime import ViolenceDetector

            logger.info("loading model from %s", artifact_path)
            detector = ViolenceDetector.load(Path(artifact_path))
            _detectors[artifact_path] = detector
        return detector


def frames_decode(path: Path, *, fps: float) -> list[np.ndarray]:
    """Frames of a stored clip at `fps`, for windows whose cached frames are gone."""
    from ml.video import decode_frames

    return decode_frames(path, fps=fps)
