"""No window stays pending forever: windows waiting longer than a bound are queued again.

A window's queue message can be lost (the broker was down when it was stored, Redis restarted
without persistence) or held (a worker killed mid-task keeps its message unacknowledged for
the broker's visibility timeout, an hour on Redis). `pending_reconcile`, run by beat every
RECONCILE_INTERVAL_SECONDS on the default queue (so it runs while the inference worker is
down), queues every window pending for longer than PENDING_REQUEUE_AFTER_SECONDS since it was
last queued, and marks it failed, with the reason, once it was queued PENDING_MAX_ATTEMPTS
times and the inference queue holds nothing that could still reach it (a long backlog is
not a lost window).

Deferred windows (detection.backpressure: the inference worker fell behind and put them aside
for idle time) are not the reconciler's to queue again or to fail: they are known, not lost.
It skips them instead, with the reason, once they were stored INFERENCE_DEFERRED_MAX_AGE_SECONDS
ago, and while some wait and the inference queue is idle it queues `detection.analyse_deferred`
so that idle time is used even when no new window arrives. Between the two bounds nothing
stays pending forever: a window is scored, failed after PENDING_MAX_ATTEMPTS queuings (no worker
reached it), or deferred and then scored or skipped for capacity.

Queuing twice is harmless: scoring skips windows already scored by the active model, and one
detection per window and model is a database constraint. Two reconcilers running at once queue
a window once: each claims it by moving its `queued_at` with a conditional update.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from celery import signature
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from cameras.models import Camera
from detection import backpressure, inference
from detection.models import Segment
from detection.pipeline import enqueue, segment_attach_to_nearby_cases, segment_mark_failed

logger = logging.getLogger(__name__)

# The Celery queue of `detection.*` tasks (CELERY_TASK_ROUTES); on Redis, a list of that name.
INFERENCE_QUEUE = "inference"


@dataclass(frozen=True)
class ReconcileReport:
    requeued: list[int]
    failed: list[int]
    not_queued: list[int]  # the broker refused them again; the next run retries
    # Deferred windows given up for capacity (skipped with the reason).
    expired: list[int] = field(default_factory=list)
    # Whether an idle-time task for the deferred windows was queued.
    catch_up_queued: bool = False


def _stale(now: dt.datetime) -> Q:
    bound = now - dt.timedelta(seconds=settings.PENDING_REQUEUE_AFTER_SECONDS)
    # Windows stored before `queued_at` existed count from their creation.
    return Q(queued_at__lt=bound) | Q(queued_at__isnull=True, created_at__lt=bound)


def pending_reconcile(*, limit: int = 500) -> ReconcileReport:
    """Queue again (or give up on) the windows pending too long; oldest first, `limit` a run."""
    now = timezone.now()
    expired = deferred_expire(now=now, limit=limit)
    stale = list(
        Segment.objects.filter(_stale(now), status=Segment.Status.PENDING, deferred_at__isnull=True)
        .order_by("created_at")
        .values_list("pk", "queued_at", "analysis_attempts")[:limit]
    )
    requeued: list[int] = []
    failed: list[int] = []
    not_queued: list[int] = []
    backlog = _inference_backlog() if stale else 0
    for segment_id, queued_at, attempts in stale:
        # Behind a backlog the window may still be reached: give up only when nothing is
        # waiting ahead of it; until then it is queued again like the others.
        if attempts >= settings.PENDING_MAX_ATTEMPTS and backlog == 0:
            reason = (
                f"not analysed after being queued {attempts} times, "
                f"{settings.PENDING_REQUEUE_AFTER_SECONDS:g} s apart (broker or inference "
                "worker unavailable)"
            )
            segment_mark_failed(segment_id=segment_id, reason=reason)
            logger.error("window %s: %s", segment_id, reason)
            failed.append(segment_id)
            continue
        claimed = Segment.objects.filter(
            pk=segment_id, status=Segment.Status.PENDING, queued_at=queued_at
        ).update(queued_at=now, analysis_attempts=attempts + 1)
        if not claimed:  # scored meanwhile, or another reconciler took it
            continue
        if enqueue(segment_id, None):
            requeued.append(segment_id)
        else:
            # Not an attempt: give it back so the next run tries again at once.
            Segment.objects.filter(pk=segment_id, queued_at=now).update(
                queued_at=queued_at, analysis_attempts=attempts
            )
            not_queued.append(segment_id)
    if requeued or failed:
        logger.warning(
            "reconciler: %d window(s) queued again, %d given up", len(requeued), len(failed)
        )
    return ReconcileReport(
        requeued=requeued,
        failed=failed,
        not_queued=not_queued,
        expired=expired,
        catch_up_queued=_queue_catch_up(),
    )


def deferred_expire(*, now: dt.datetime | None = None, limit: int = 500) -> list[int]:
    """Skip, with the reason, the deferred windows stored longer ago than
    INFERENCE_DEFERRED_MAX_AGE_SECONDS: analysis could not reach them in time. Their footage is
    kept (and held with any case nearby, as for any window triage never saw)."""
    now = now or timezone.now()
    bound = now - dt.timedelta(seconds=settings.INFERENCE_DEFERRED_MAX_AGE_SECONDS)
    reason = backpressure.deferred_skip_reason()
    late = list(
        backpressure.deferred_waiting()
        .filter(created_at__lt=bound)
        .order_by("created_at")
        .values_list("pk", "camera_id")[:limit]
    )
    expired: list[int] = []
    for segment_id, camera_id in late:
        with transaction.atomic():
            # The camera's lock first, in the order triage takes its locks.
            Camera.objects.select_for_update().filter(pk=camera_id).first()
            changed = Segment.objects.filter(
                pk=segment_id, status=Segment.Status.PENDING, deferred_at__isnull=False
            ).update(status=Segment.Status.SKIPPED, status_reason=reason)
            if changed:  # else scored meanwhile
                segment = Segment.objects.get(pk=segment_id)
                segment_attach_to_nearby_cases(segment)
                expired.append(segment_id)
    if expired:
        logger.error("reconciler: %d deferred window(s) skipped: %s", len(expired), reason)
    return expired


def _queue_catch_up() -> bool:
    """Queue one idle-time task for the deferred windows when some wait and the inference
    queue holds nothing (a queued message would run the catch-up after its own batch)."""
    if not backpressure.deferred_waiting().exists():
        return False
    client = inference.redis_client()
    if client is None or _inference_backlog() > 0:
        return False
    try:
        # By name, routed to the inference queue (settings.CELERY_TASK_ROUTES).
        signature("detection.analyse_deferred").apply_async()
    except Exception as error:  # the broker is down: the next run tries again
        logger.warning("reconciler: idle-time task not queued (%s)", type(error).__name__)
        return False
    return True


def _inference_backlog() -> int:
    """Messages waiting on the inference queue (0 without a broker or when it cannot say)."""
    client = inference.redis_client()
    if client is None:
        return 0
    try:
        return int(client.llen(INFERENCE_QUEUE))
    except Exception as error:  # the broker is down: nothing it holds can reach the model
        logger.warning("reconciler: queue depth unknown (%s)", type(error).__name__)
        return 0


def pending_summary(
    now: dt.datetime | None = None, *, deferred: bool | None = None
) -> tuple[int, float]:
    """How many windows wait for the model, and the age in seconds of the oldest (0 if none).
    `deferred`: None counts every waiting window, True only deferred ones, False the others."""
    now = now or timezone.now()
    pending = Segment.objects.filter(status=Segment.Status.PENDING)
    if deferred is not None:
        pending = pending.filter(deferred_at__isnull=not deferred)
    count = pending.count()
    oldest = pending.order_by("created_at").values_list("created_at", flat=True).first()
    return count, (now - oldest).total_seconds() if oldest is not None else 0.0
