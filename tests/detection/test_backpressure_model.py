"""Backpressure with the model running: stage-2 admission control, and a flood of windows that
ends with every window scored, deferred then scored, or skipped with a reason; none pending.

The task functions are called directly, in the order a worker would run their messages, on the
embedded Redis (the pending list, the frame cache, the broker's queues).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from django.db import transaction
from django.utils import timezone

from bench.clips import fixture_clips
from detection import backpressure, inference, reconcile
from detection.models import Detection, Segment, Stage2Skipped
from detection.pipeline import segment_finish_stage2, segments_analyse
from detection.tasks import analyse_segment
from ml.runtime import CascadeDetector
from tests.support.windows import store_clip_window

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clean_queues(purge_queues: None) -> Iterator[None]:
    """No message or pending id left for the next test (each stored window queues one)."""
    yield
    client = inference.redis_client()
    client.delete(inference.pending_key(), "inference", backpressure._cost_key())


@pytest.fixture
def gate_passes_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every window passes the cascade's gate: these tests are about what happens after it,
    and must not depend on the model's scores of the fixture clips."""
    monkeypatch.setattr(
        CascadeDetector, "gate_passes", lambda self, scores: np.ones(len(scores), dtype=bool)
    )


def _store(camera, start: dt.datetime, frames: np.ndarray | None = None) -> Segment:
    return store_clip_window(camera, start, frames=frames)


def _age(segment_ids: list[int], seconds: float) -> None:
    Segment.objects.filter(pk__in=segment_ids).update(
        created_at=timezone.now() - dt.timedelta(seconds=seconds)
    )


def _needs_cascade(active_model) -> None:
    if not active_model.card.get("gate"):
        pytest.skip("the model under test has no stage 2 (the shipped cascade is missing)")


def test_a_tiny_stage2_budget_decides_on_stage1_alone_and_says_why(
    world, active_model, settings, clean_queues, gate_passes_all
):
    _needs_cascade(active_model)
    settings.INFERENCE_STAGE2_MAX_LAG_SECONDS = 0.0
    start = timezone.now() - dt.timedelta(days=3)
    with transaction.atomic():
        segment = _store(world.camera_a, start)
    [detection] = segments_analyse(segment_ids=[segment.pk])
    assert detection.stage2_skipped == Stage2Skipped.OVER_CAPACITY
    assert detection.stage2_score is None and detection.stage2_ms is None
    assert detection.stage1_score is not None
    detector = inference.detector_for(active_model.artifact_path, card=active_model.card)
    # The window took the cascade's path of a window stage 2 did not score.
    assert detection.score == pytest.approx(detector.fuse(detection.stage1_score, None).fused)

    # With room in the budget the same kind of window gets its pose check, and its cost is
    # measured for the next decisions.
    settings.INFERENCE_STAGE2_MAX_LAG_SECONDS = 1e6
    with transaction.atomic():
        checked = _store(world.camera_a, start + dt.timedelta(seconds=2))
    _worker_takes_the_pending_list()
    [detection] = segments_analyse(segment_ids=[checked.pk])
    assert detection.stage2_skipped == "" and detection.stage2_score is not None
    measured = inference.redis_client().get(backpressure._cost_key())
    assert measured is not None and float(measured) > 0


def _worker_takes_the_pending_list() -> None:
    """What `analyse_segment` does before scoring: it takes the waiting ids off the list (its
    own among them), so none of them counts as fresh work waiting behind its batch."""
    inference.pending_drain(1000)


def test_stage2_in_the_stage1_worker_gives_way_to_windows_piling_up_behind_it(
    world, active_model, settings, clean_queues, gate_passes_all
):
    """Without a pose queue, a pose check (about a core-second) holds up every window stored
    meanwhile: it does not run while windows pile up behind the batch (many cameras)."""
    _needs_cascade(active_model)
    settings.INFERENCE_POSE_QUEUE = ""
    settings.INFERENCE_STAGE2_MAX_LAG_SECONDS = 1e6
    settings.INFERENCE_BATCH_MAX = 8
    start = timezone.now() - dt.timedelta(days=4)
    with transaction.atomic():
        first, second = (_store(world.camera_a, start + dt.timedelta(seconds=s)) for s in (0, 2))
    _worker_takes_the_pending_list()
    # Half a batch of other cameras' windows stored while the worker has these two.
    for other in range(4):
        inference.pending_push(10**9 + other)
    [detection] = segments_analyse(segment_ids=[first.pk])
    assert detection.stage2_skipped == Stage2Skipped.OVER_CAPACITY
    assert detection.stage2_score is None and detection.stage1_score is not None

    # Nothing waiting behind the batch: the pose check runs.
    _worker_takes_the_pending_list()
    [detection] = segments_analyse(segment_ids=[second.pk])
    assert detection.stage2_skipped == "" and detection.stage2_score is not None


def test_stage2_that_cannot_read_the_window_is_recorded_as_unreadable(
    world, active_model, settings, clean_queues, gate_passes_all
):
    _needs_cascade(active_model)
    settings.INFERENCE_STAGE2_MAX_LAG_SECONDS = 1e6
    detector = inference.detector_for(active_model.artifact_path, card=active_model.card)
    spec = detector.spec
    frames = np.zeros((spec.window_frames, spec.height, spec.width, 3), dtype=np.uint8)
    with transaction.atomic():
        segment = _store(world.camera_a, timezone.now() - dt.timedelta(days=2), frames)
    # Stage 1 reads the reader's frames from Redis; stage 2 reads the stored original.
    Path(segment.original.path).write_bytes(b"not a video" * 100)
    [detection] = segments_analyse(segment_ids=[segment.pk])
    assert detection.stage2_skipped == Stage2Skipped.UNREADABLE
    assert detection.stage2_score is None


def test_the_pose_queue_finishes_a_window_already_too_old_on_stage1_at_once(
    world, active_model, settings, clean_queues
):
    _needs_cascade(active_model)
    settings.INFERENCE_STAGE2_MAX_LAG_SECONDS = 5
    with transaction.atomic():
        segment = _store(world.camera_a, timezone.now() - dt.timedelta(days=1))
    _age([segment.pk], 6)
    detection = segment_finish_stage2(
        segment_id=segment.pk,
        version_id=active_model.pk,
        stage1=0.5,
        preprocess_ms=1.0,
        inference_ms=2.0,
        batch_size=4,
    )
    assert detection is not None
    assert detection.stage2_skipped == Stage2Skipped.OVER_CAPACITY
    assert detection.stage2_score is None and detection.stage1_score == 0.5
    segment.refresh_from_db()
    assert segment.status == Segment.Status.ANALYSED


def test_a_flood_ends_with_every_window_scored_deferred_then_scored_or_skipped(
    world, active_model, settings, clean_queues
):
    """60 windows stored at once: 20 fresh, 30 behind the lag bound, 10 past the deferred
    window's age. The worker scores the fresh ones newest first, defers the old ones to idle
    time, the reconciler skips the hopeless ones with the reason, idle time scores the rest."""
    settings.INFERENCE_BATCH_MAX = 8
    settings.INFERENCE_MAX_LAG_SECONDS = 30
    settings.INFERENCE_DEFERRED_MAX_AGE_SECONDS = 600
    settings.INFERENCE_STAGE2_MAX_LAG_SECONDS = 0  # stage 2 costs a second a window here
    settings.PENDING_REQUEUE_AFTER_SECONDS = 60
    detector = inference.detector_for(active_model.artifact_path, card=active_model.card)
    # The reader's frames ride along as they do live, so the flood costs stage 1 only.
    frames = np.stack(inference.frames_decode(fixture_clips()[0], spec=detector.spec))
    base = timezone.now() - dt.timedelta(days=6)
    with transaction.atomic():
        windows = [
            _store(world.camera_a, base + dt.timedelta(seconds=2 * i), frames) for i in range(60)
        ]
    ids = [segment.pk for segment in windows]
    hopeless, behind, fresh = ids[:10], ids[10:40], ids[40:]
    _age(hopeless, 700)
    _age(behind, 45)
    assert inference.pending_length() == 60

    # The worker runs the first message (the oldest window's): it defers the 40 old windows
    # and scores the newest 7 waiting with... none of them: its own window is old.
    first = analyse_segment(ids[0])
    assert Segment.objects.filter(pk__in=ids[:40], deferred_at__isnull=False).count() == 40
    newest_first = set(
        Detection.objects.filter(segment_id__in=ids).values_list("segment_id", flat=True)
    )
    assert first == 7 and newest_first == set(fresh[-7:]), "the newest windows go first"

    # Beat runs the reconciler meanwhile: the hopeless windows are skipped with the reason.
    report = reconcile.pending_reconcile()
    assert sorted(report.expired) == hopeless and report.requeued == []

    # The rest of the messages, in the broker's order; duplicates of scored windows are cheap.
    for segment_id in ids[1:]:
        analyse_segment(segment_id)

    statuses = dict(Segment.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert Segment.Status.PENDING not in statuses.values(), "a window was left pending"
    rows = {
        segment.pk: segment
        for segment in Segment.objects.filter(pk__in=ids).prefetch_related("detections")
    }
    for segment_id in fresh:
        segment = rows[segment_id]
        assert segment.status == Segment.Status.ANALYSED and segment.deferred_at is None
    for segment_id in behind:
        segment = rows[segment_id]
        assert segment.status == Segment.Status.ANALYSED and segment.deferred_at is not None
        # Scored after it was deferred, on stage 1 alone: stage 2 had no time left for it.
        [detection] = segment.detections.all()
        assert detection.stage2_skipped in ("", Stage2Skipped.OVER_CAPACITY)
    for segment_id in hopeless:
        segment = rows[segment_id]
        assert segment.status == Segment.Status.SKIPPED
        assert segment.status_reason == "over capacity: not analysed within 10 min"
        assert not segment.detections.exists()
    assert Detection.objects.filter(segment_id__in=ids).count() == 50


def test_idle_time_yields_to_fresh_windows_then_scores_the_deferred_oldest_first(
    world, active_model, settings, clean_queues
):
    from detection.tasks import analyse_deferred

    settings.INFERENCE_MAX_LAG_SECONDS = 30
    settings.INFERENCE_BATCH_MAX = 2
    settings.INFERENCE_STAGE2_MAX_LAG_SECONDS = 0
    base = timezone.now() - dt.timedelta(days=7)
    with transaction.atomic():
        windows = [_store(world.camera_b, base + dt.timedelta(seconds=2 * i)) for i in range(3)]
    ids = [segment.pk for segment in windows]
    _age(ids, 60)
    inference.redis_client().delete(inference.pending_key())
    assert backpressure.defer_stale() == 3
    inference.pending_push(999_999)  # a fresh window waits: it goes first
    assert analyse_deferred() == 0
    assert not Detection.objects.filter(segment_id__in=ids).exists()
    inference.pending_drain(1)
    # One batch of 2 at a time, oldest first, until none is left.
    assert analyse_deferred(batches=1) == 2
    scored = Detection.objects.filter(segment_id__in=ids).values_list("segment_id", flat=True)
    assert set(scored) == set(ids[:2])
    assert analyse_deferred() == 1
    assert not Segment.objects.filter(pk__in=ids, status=Segment.Status.PENDING).exists()
