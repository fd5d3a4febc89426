"""Backpressure: when analysis cannot keep up, fit the work to the hardware and say so.

Footage is never dropped: ingestion stores every window whatever the model's backlog (it never
waits for the model). What gives way under load is, in this order:

0. Ingestion's own decoding: a camera reader that falls more than INGEST_SHED_LAG_SECONDS
   behind its stream (more cameras than the cores can decode) records without decoding until
   it has caught up (cameras.ingest.decoding.DecodeShedder). Those windows are stored deferred
   (`segment_prepare(deferred=True)`) and scored from their originals in idle time, as below.

1. Stage 2 (pose, ~1 core-second a gated window on a 2-core AVX2 CPU, against ~12 ms of
   stage 1): a window the gate passes goes to stage 2 only while stage 2 keeps up, i.e. while
   the window's age, plus the measured cost of the stage-2 work ahead of it and its own, stays
   under INFERENCE_STAGE2_MAX_LAG_SECONDS (`stage2_admit`). Otherwise the window is decided at
   once on stage 1 alone (`fuse(stage1, None)`, the cascade's own path of a window stage 2
   did not score) and its Detection says why (`stage2_skipped = "over_capacity"`). Newer
   windows are admitted first: a fresh window's pose check is worth more than a stale one's.
   Without a pose queue, stage 2 runs in the worker that scores stage 1, and every pose check
   holds up the windows stored meanwhile. There a pose check also has to leave those windows
   under half a batch, at the rate they arrive, and within the same budget
   (`stage2_may_run_here`). Otherwise the rest of the batch is decided on stage 1.
2. Stage 1: the worker scores the newest windows first (the pending list is drained from its
   tail), so a fresh window's latency stays bounded while a backlog exists. A window stored
   longer than INFERENCE_MAX_LAG_SECONDS ago when the worker runs is deferred
   (`Segment.deferred_at`, `defer_stale`) instead of holding up the fresh ones; deferred windows
   are scored oldest first once no fresh window waits (idle time), and a deferred window
   still unscored INFERENCE_DEFERRED_MAX_AGE_SECONDS after it was stored is skipped with the
   reason (detection.reconcile), so nothing stays pending forever.

Ages are counted from when the window was stored (`created_at`), not from its `ended_at`: an
edge device may upload a clip recorded long ago, which is fresh work for the model.

Only the inference worker defers windows: it knows it is behind. A window pending because no
worker runs at all is the reconciler's (queued again, then failed after PENDING_MAX_ATTEMPTS).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from detection import inference
from detection.models import Segment

if TYPE_CHECKING:
    from django.db.models import QuerySet

logger = logging.getLogger(__name__)

# Weight of the newest measurement in the moving average of the stage-2 cost: about the last
# ten windows, so a busier CPU is noticed within seconds and one slow window moves it little.
COST_SMOOTHING = 0.2
_cost_lock = threading.Lock()
_local_cost: list[float] = []


def _cost_key() -> str:
    return inference._key("stage2", "cost_seconds")


def stage2_cost_seconds() -> float:
    """The measured cost of one stage-2 window (moving average, shared by every worker through
    Redis), else INFERENCE_STAGE2_COST_SECONDS before any was measured."""
    client = inference.redis_client()
    if client is None:
        return _local_cost[0] if _local_cost else settings.INFERENCE_STAGE2_COST_SECONDS
    try:
        raw = client.get(_cost_key())
    except Exception as error:  # Redis down: the default is a safe guess, not a crash
        logger.warning("stage-2 cost unknown (%s)", type(error).__name__)
        raw = None
    return float(raw) if raw else settings.INFERENCE_STAGE2_COST_SECONDS


def stage2_cost_record(seconds: float) -> None:
    """Fold one measured stage-2 run into the moving average. Two workers racing may lose one
    sample; the average stays an average."""
    with _cost_lock:
        previous = stage2_cost_seconds()
        value = previous + COST_SMOOTHING * (seconds - previous)
        client = inference.redis_client()
        if client is None:
            _local_cost[:] = [value]
            return
        try:
            client.set(_cost_key(), repr(value))
        except Exception as error:
            logger.warning("stage-2 cost not recorded (%s)", type(error).__name__)


def stage2_backlog_seconds() -> float:
    """Stage-2 work already waiting ahead of a new gated window: the pose queue's depth times
    the cost, shared by the INFERENCE_POSE_WORKERS draining it, with INFERENCE_POSE_QUEUE set;
    0 otherwise (the worker runs stage 2 of its own batch itself, which `stage2_admit`
    counts)."""
    queue = settings.INFERENCE_POSE_QUEUE
    client = inference.redis_client()
    if not queue or client is None:
        return 0.0
    try:
        depth = int(client.llen(queue))
    except Exception:
        return 0.0
    return depth * stage2_cost_seconds() / settings.INFERENCE_POSE_WORKERS


def age_seconds(segment: Segment, now: dt.datetime) -> float:
    return max(0.0, (now - segment.created_at).total_seconds())


def stage2_admit(segments: Sequence[Segment], *, now: dt.datetime | None = None) -> set[int]:
    """Which of these gated windows stage 2 may score (their pks) without a window's decision
    coming later than INFERENCE_STAGE2_MAX_LAG_SECONDS after it was stored.

    Newest first: each admitted window adds one stage-2 cost to the time the next one would
    wait, so under load the freshest windows keep their pose check and the older ones are
    decided on stage 1 at once rather than late.
    """
    now = now or timezone.now()
    budget = settings.INFERENCE_STAGE2_MAX_LAG_SECONDS
    cost = stage2_cost_seconds()
    ahead = stage2_backlog_seconds()
    admitted: set[int] = set()
    for segment in sorted(segments, key=lambda s: s.created_at, reverse=True):
        if age_seconds(segment, now) + ahead + cost <= budget:
            admitted.add(segment.pk)
            ahead += cost
    return admitted


def defer_stale(*, now: dt.datetime | None = None) -> int:
    """Mark deferred every pending window stored more than INFERENCE_MAX_LAG_SECONDS ago: the
    worker running this is behind, and scoring those first would make every fresh window late
    too. Returns how many were deferred.

    Their decoded frames leave Redis (~200 kB a window): under a long overload they would fill
    its memory (96 cameras for INFERENCE_DEFERRED_MAX_AGE_SECONDS: gigabytes). Idle time decodes
    the stored original instead, as for any window whose frames are gone.
    """
    now = now or timezone.now()
    bound = now - dt.timedelta(seconds=settings.INFERENCE_MAX_LAG_SECONDS)
    stale = Segment.objects.filter(
        status=Segment.Status.PENDING, deferred_at__isnull=True, created_at__lt=bound
    )
    deferred = 0
    while True:
        # In chunks: a query's parameter count is bounded (SQLite), a backlog is not.
        chunk = list(stale.order_by("created_at").values_list("pk", flat=True)[:DEFER_CHUNK])
        if not chunk:
            break
        deferred += stale.filter(pk__in=chunk).update(deferred_at=now)
        inference.frames_forget(chunk)
    if deferred:
        logger.warning(
            "inference behind by more than %g s: %d window(s) deferred to idle time",
            settings.INFERENCE_MAX_LAG_SECONDS,
            deferred,
        )
    return deferred


DEFER_CHUNK = 500


def deferred_waiting() -> QuerySet[Segment]:
    return Segment.objects.filter(status=Segment.Status.PENDING, deferred_at__isnull=False)


def deferred_oldest(limit: int) -> list[int]:
    """Up to `limit` deferred windows, oldest first (those nearest to being skipped)."""
    return list(deferred_waiting().order_by("created_at").values_list("pk", flat=True)[:limit])


def fresh_work_waiting() -> bool:
    """Whether fresh windows wait on the pending list (deferred work waits for them)."""
    return inference.pending_length() > 0


def stage2_may_run_here(batch_ids: Collection[int], *, elapsed_seconds: float) -> bool:
    """Whether the worker that scores stage 1 may spend one more pose check on its batch.

    Without a pose queue, every pose check (about a core-second) holds up the windows stored
    since the batch was taken off the pending list. They arrived at `waiting /
    elapsed_seconds` a second. A pose check runs only if two things hold at that rate when
    it ends:
    - the windows waiting still fill less than half a batch (INFERENCE_BATCH_MAX), so the
      next batch clears them with room to spare;
    - none of them has waited longer than INFERENCE_STAGE2_MAX_LAG_SECONDS.

    Under a steady load (many cameras) pose checks therefore stop, so the backlog never
    outgrows a batch: it is drained newest first, and its oldest windows would age into
    deferral. A few windows stored during a slow start, or one camera's next window, still
    leave room for them.
    """
    limit = settings.INFERENCE_BATCH_MAX
    waiting = sum(pk not in batch_ids for pk in inference.pending_newest(len(batch_ids) + limit))
    cost = stage2_cost_seconds()
    elapsed = max(elapsed_seconds, 1e-3)
    if waiting and waiting * (elapsed + cost) / elapsed >= limit / 2:
        return False
    return elapsed + cost <= settings.INFERENCE_STAGE2_MAX_LAG_SECONDS


def skipped_for_capacity(prefix: str = "") -> Q:
    """Windows skipped for capacity: deferred, then never analysed in time (`deferred_expire`
    in detection.reconcile), as opposed to skipped by the motion gate. Matches on the status
    and `deferred_at`, not on the words of `status_reason`. `prefix` reaches Segment through a
    relation, e.g. `segments__` from Camera."""
    return Q(**{f"{prefix}status": Segment.Status.SKIPPED, f"{prefix}deferred_at__isnull": False})


def deferred_skip_reason() -> str:
    minutes = settings.INFERENCE_DEFERRED_MAX_AGE_SECONDS / 60
    return f"over capacity: not analysed within {minutes:g} min"
