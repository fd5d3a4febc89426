"""Celery tasks of detection. They take ids and call one service each.

`detection.*` tasks run on the `inference` queue (see CELERY_TASK_ROUTES); see
detection/inference.py for how a task batches windows from many cameras. The other two keep
the names they had in the former `operations` app, so messages already queued still run.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from detection import inference
from detection.models import RetentionRun
from detection.notifications import CASE_NOTIFY_TASK, case_notification_create
from detection.pipeline import (
    STAGE2_TASK,
    deferred_catch_up,
    segment_finish_stage2,
    segments_analyse,
)
from detection.reconcile import pending_reconcile
from detection.retention import retention_run
from detection.services import cases_end_quiet_spans
from detection.storage import storage_warn_operators


@shared_task(
    name="detection.analyse_segment",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def analyse_segment(segment_id: int) -> int:
    """Score this window together with the newest others waiting; then, if no fresh window
    waits any more, one batch of deferred ones (detection.backpressure). Returns windows
    scored."""
    others = inference.pending_drain(settings.INFERENCE_BATCH_MAX - 1)
    scored = len(segments_analyse(segment_ids=[segment_id, *others]))
    return scored + len(deferred_catch_up())


# Queued by the reconciler (by name) when deferred windows wait and the inference queue is idle.
DEFERRED_TASK = "detection.analyse_deferred"


@shared_task(
    name=DEFERRED_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def analyse_deferred(batches: int = 20) -> int:
    """Idle time: score deferred windows, oldest first, a batch at a time, until none is left,
    fresh windows arrive (their own tasks carry on afterwards), or `batches` ran (then the
    reconciler's next run queues this again, so one task never holds the worker for long)."""
    total = 0
    for _ in range(batches):
        done = deferred_catch_up()
        if not done:
            break
        total += len(done)
    return total


@shared_task(
    name=STAGE2_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def score_stage2(
    segment_id: int,
    version_id: int,
    stage1: float,
    preprocess_ms: float = 0.0,
    inference_ms: float = 0.0,
    batch_size: int = 1,
) -> int | None:
    """Pose (stage 2) of a window the gate passed, on INFERENCE_POSE_QUEUE; then triage."""
    detection = segment_finish_stage2(
        segment_id=segment_id,
        version_id=version_id,
        stage1=stage1,
        preprocess_ms=preprocess_ms,
        inference_ms=inference_ms,
        batch_size=batch_size,
    )
    return detection.pk if detection is not None else None


@shared_task(name="operations.retention_sweep", acks_late=True, max_retries=0)
def retention_sweep() -> int:
    """Run by beat. Idempotent: a second run finds nothing more to erase."""
    report = retention_run(dry_run=False, trigger=RetentionRun.Trigger.SCHEDULE)
    # Warn operators long before the quota would collide with the legal minimum.
    storage_warn_operators()
    return len(report.erasures)


@shared_task(name="operations.reconcile_pending", max_retries=0, ignore_result=True)
def reconcile_pending() -> int:
    """Run by beat. On the default queue (not `detection.*`): it must run while the inference
    worker is dead or hung, which is when it is needed. Returns windows queued again."""
    return len(pending_reconcile().requeued)


@shared_task(name=CASE_NOTIFY_TASK, acks_late=True, max_retries=3)
def case_notify(case_id: int) -> int | None:
    """Idempotent: a case is announced at most once per band."""
    notification = case_notification_create(case_id=case_id)
    return notification.pk if notification is not None else None


@shared_task(name="detection.end_quiet_spans", acks_late=True, max_retries=0)
def end_quiet_spans() -> int:
    """End the spans of cases whose camera stopped sending windows (periodic)."""
    return cases_end_quiet_spans()
