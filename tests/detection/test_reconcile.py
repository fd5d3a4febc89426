"""The reconciler: windows pending too long are queued again, once, and given up with a reason.

The queue is replaced by a recorder here; tests/faults/ run the same code against a real
Redis and a real worker.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from detection import reconcile
from detection.models import Segment
from tests import factories

pytestmark = pytest.mark.django_db


def _pending(seconds_ago: float, attempts: int = 1, **fields: object) -> Segment:
    return factories.SegmentFactory(
        status=Segment.Status.PENDING,
        queued_at=timezone.now() - dt.timedelta(seconds=seconds_ago),
        analysis_attempts=attempts,
        **fields,
    )


def test_only_windows_pending_past_the_bound_are_queued_again_and_only_once(settings, queued):
    settings.PENDING_REQUEUE_AFTER_SECONDS = 60
    stale, fresh = _pending(61), _pending(30)
    done = factories.SegmentFactory(
        status=Segment.Status.ANALYSED, queued_at=timezone.now() - dt.timedelta(hours=1)
    )
    report = reconcile.pending_reconcile()
    assert report.requeued == [stale.pk] and queued == [stale.pk], (report, done.pk, fresh.pk)
    stale.refresh_from_db()
    assert stale.analysis_attempts == 2
    assert stale.queued_at is not None
    assert timezone.now() - stale.queued_at < dt.timedelta(seconds=5)
    # Run again at once (two beats, a second reconciler): nothing is queued twice.
    assert reconcile.pending_reconcile().requeued == []
    assert queued == [stale.pk], "a window was queued twice within the bound"


def test_windows_from_before_queued_at_existed_count_from_their_creation(settings, queued):
    settings.PENDING_REQUEUE_AFTER_SECONDS = 60
    legacy = factories.SegmentFactory(status=Segment.Status.PENDING, queued_at=None)
    Segment.objects.filter(pk=legacy.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=5), analysis_attempts=0
    )
    assert reconcile.pending_reconcile().requeued == [legacy.pk]


def test_after_the_last_attempt_a_window_is_failed_with_its_reason(settings, queued, purge_queues):
    # purge_queues: messages left by earlier tests would read as a backlog ahead of it.
    settings.PENDING_REQUEUE_AFTER_SECONDS = 60
    settings.PENDING_MAX_ATTEMPTS = 3
    hopeless = _pending(61, attempts=3)
    report = reconcile.pending_reconcile()
    assert report.failed == [hopeless.pk] and queued == []
    hopeless.refresh_from_db()
    assert hopeless.status == Segment.Status.FAILED
    assert "queued 3 times" in hopeless.status_reason
    event = AuditEvent.objects.get(action="segment.analysis_failed", object_id=str(hopeless.pk))
    assert "queued 3 times" in event.details["reason"]


def test_a_broker_still_down_does_not_use_up_an_attempt(settings, monkeypatch):
    settings.PENDING_REQUEUE_AFTER_SECONDS = 60
    window = _pending(120)
    before = Segment.objects.get(pk=window.pk).queued_at
    monkeypatch.setattr(reconcile, "enqueue", lambda segment_id, frames: False)
    report = reconcile.pending_reconcile()
    assert report.not_queued == [window.pk] and report.requeued == []
    window.refresh_from_db()
    assert (window.analysis_attempts, window.queued_at) == (1, before)


def test_pending_summary_counts_and_ages_the_waiting_windows():
    now = timezone.now()
    assert reconcile.pending_summary(now) == (0, 0.0)
    old = _pending(0)
    Segment.objects.filter(pk=old.pk).update(created_at=now - dt.timedelta(seconds=90))
    _pending(0)
    factories.SegmentFactory(status=Segment.Status.ANALYSED)
    count, oldest = reconcile.pending_summary(now)
    assert count == 2 and oldest == pytest.approx(90, abs=1)


def test_beat_runs_the_reconciler_on_the_default_queue_often_enough_for_the_bound(settings):
    from abusewatch.celery import app

    entry = app.conf.beat_schedule["detection-reconcile-pending"]
    assert entry["task"] in app.tasks
    # Not the inference queue: it must run while the inference worker is dead or hung.
    assert entry["options"]["queue"] == "default"
    route = app.amqp.router.route({}, entry["task"])
    assert route["queue"].name == "default"
    # A killed worker's window must be picked up well within two minutes.
    assert settings.PENDING_REQUEUE_AFTER_SECONDS + entry["schedule"] <= 90


def test_a_backlog_on_the_inference_queue_is_not_a_reason_to_give_up(settings, queued):
    from detection import inference

    settings.PENDING_REQUEUE_AFTER_SECONDS = 60
    settings.PENDING_MAX_ATTEMPTS = 3
    behind = _pending(61, attempts=3)
    client = inference.redis_client()
    client.delete("inference")
    client.rpush("inference", "a message still ahead of it")
    try:
        report = reconcile.pending_reconcile()
    finally:
        client.delete("inference")
    assert report.failed == [] and report.requeued == [behind.pk], report
    behind.refresh_from_db()
    assert behind.status == Segment.Status.PENDING and behind.analysis_attempts == 4
