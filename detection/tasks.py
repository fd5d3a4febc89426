"""Celery tasks of the `inference` queue. They take ids and call one service each.

See detection/inference.py for how a task batches windows from many cameras.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from detection import inference
from detection.services import segments_analyse


@shared_task(
    name="detection.analyse_segment",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def analyse_segment(segment_id: int) -> int:
    """Score this window together with whatever else is waiting; returns windows scored."""
    others = inference.pending_drain(settings.INFERENCE_BATCH_MAX - 1)
    return len(segments_analyse(segment_ids=[segment_id, *others]))
