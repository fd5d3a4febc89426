"""Backpressure without the model: order of the pending list, deferral, the reconciler's part,
and the "Over capacity" notice on the pages that show camera health, scoped like the cameras.

The model-running half (admission control, a flood of windows) is test_backpressure_model.py.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from detection import backpressure, inference, reconcile
from detection.models import Case, Segment, Stage2Skipped
from tests import factories
from tests.conftest import World

pytestmark = pytest.mark.django_db


def _recent() -> dict[str, dt.datetime]:
    """A live window's times: it started just before it was stored (now)."""
    started = timezone.now() - dt.timedelta(seconds=2, microseconds=next(_unique))
    return {"started_at": started, "ended_at": started + dt.timedelta(seconds=2)}


_unique = itertools.count()


def _stored(camera, seconds_ago: float, **fields: object) -> Segment:
    """A window stored `seconds_ago`, its footage from just before then."""
    times = _recent()
    ago = dt.timedelta(seconds=seconds_ago)
    fields = {
        "started_at": times["started_at"] - ago,
        "ended_at": times["ended_at"] - ago,
        **fields,
    }
    segment = factories.SegmentFactory(camera=camera, **fields)
    Segment.objects.filter(pk=segment.pk).update(
        created_at=timezone.now() - dt.timedelta(seconds=seconds_ago)
    )
    segment.refresh_from_db()
    return segment


def test_the_pending_list_is_drained_newest_first(purge_queues):
    for segment_id in [11, 12, 13, 14, 15]:  # pushed as windows are stored: oldest first
        inference.pending_push(segment_id)
    assert inference.pending_length() == 5
    assert inference.pending_drain(3) == [15, 14, 13]
    assert inference.pending_drain(10) == [12, 11]
    assert inference.pending_drain(10) == [] and inference.pending_length() == 0


def test_a_pose_check_in_the_stage1_worker_leaves_under_half_a_batch_waiting_in_budget(
    settings, purge_queues
):
    settings.INFERENCE_BATCH_MAX = 8  # half a batch: 4 windows
    settings.INFERENCE_STAGE2_MAX_LAG_SECONDS = 100
    client = inference.redis_client()
    client.set(backpressure._cost_key(), "2.0")
    batch = {1, 2}
    try:
        for segment_id in [1, 2]:  # the batch's own ids may still be on the list
            inference.pending_push(segment_id)
        assert backpressure.stage2_may_run_here(batch, elapsed_seconds=0.1), "nothing waits"
        inference.pending_push(3)
        assert inference.pending_newest(2) == [3, 2]
        # One window stored in the batch's first second: 3 by the end of a 2-s pose check.
        assert backpressure.stage2_may_run_here(batch, elapsed_seconds=1.0)
        # The same window in its first half second: 5 expected, more than half a batch.
        assert not backpressure.stage2_may_run_here(batch, elapsed_seconds=0.5)
        for segment_id in [4, 5]:
            inference.pending_push(segment_id)
        # Three stored during a 30-s cold start: a slow arrival, room for the check...
        assert backpressure.stage2_may_run_here(batch, elapsed_seconds=30.0)
        # ...unless they would wait longer than the stage-2 budget.
        settings.INFERENCE_STAGE2_MAX_LAG_SECONDS = 20
        assert not backpressure.stage2_may_run_here(batch, elapsed_seconds=30.0)
    finally:
        client.delete(backpressure._cost_key())
        inference.pending_drain(10)


def test_only_pending_windows_stored_longer_ago_than_the_lag_bound_are_deferred(settings, world):
    settings.INFERENCE_MAX_LAG_SECONDS = 30
    old = _stored(world.camera_a, 31, status=Segment.Status.PENDING)
    fresh = _stored(world.camera_a, 5, status=Segment.Status.PENDING)
    done = _stored(world.camera_a, 600, status=Segment.Status.ANALYSED)
    for segment in (old, fresh):
        inference.frames_put(segment.pk, np.zeros((2, 4, 4, 3), dtype=np.uint8))
    assert backpressure.defer_stale() == 1
    # A deferred window's frames leave Redis (idle time decodes its original); fresh ones stay.
    assert inference.frames_get(old.pk) is None and inference.frames_get(fresh.pk) is not None
    inference.frames_forget([fresh.pk])
    for segment in (old, fresh, done):
        segment.refresh_from_db()
    assert old.deferred_at is not None and old.status == Segment.Status.PENDING
    assert fresh.deferred_at is None and done.deferred_at is None
    assert backpressure.defer_stale() == 0, "a deferred window is not deferred again"
    assert backpressure.deferred_oldest(10) == [old.pk]


def test_stage2_admission_keeps_the_newest_windows_within_the_budget(settings, world):
    settings.INFERENCE_STAGE2_MAX_LAG_SECONDS = 10
    settings.INFERENCE_STAGE2_COST_SECONDS = 3
    settings.INFERENCE_POSE_QUEUE = ""
    inference.redis_client().delete(backpressure._cost_key())  # nothing measured yet
    windows = [_stored(world.camera_a, age) for age in (0, 1, 2, 3, 9)]
    admitted = backpressure.stage2_admit(windows)
    # Newest first, each admitted window adding 3 s before the next: 0 + 3 and 1 + 6 fit in
    # 10 s; 2 + 9, 3 + 9 and 9 + 9 do not.
    assert admitted == {windows[0].pk, windows[1].pk}
    settings.INFERENCE_STAGE2_MAX_LAG_SECONDS = 12.5
    assert backpressure.stage2_admit(windows) == {windows[0].pk, windows[1].pk, windows[2].pk}
    settings.INFERENCE_STAGE2_MAX_LAG_SECONDS = 0
    assert backpressure.stage2_admit(windows) == set()


def test_the_measured_stage2_cost_replaces_the_assumed_one(settings):
    settings.INFERENCE_STAGE2_COST_SECONDS = 1.0
    inference.redis_client().delete(backpressure._cost_key())
    assert backpressure.stage2_cost_seconds() == 1.0
    backpressure.stage2_cost_record(3.0)
    assert backpressure.stage2_cost_seconds() == pytest.approx(1.0 + 0.2 * 2.0)
    inference.redis_client().delete(backpressure._cost_key())


def test_the_pose_backlog_is_shared_by_the_pose_workers(settings, purge_queues):
    settings.INFERENCE_POSE_QUEUE = "pose"
    client = inference.redis_client()
    client.rpush("pose", *[f"message {i}" for i in range(6)])
    client.set(backpressure._cost_key(), "1.5")
    try:
        settings.INFERENCE_POSE_WORKERS = 1
        assert backpressure.stage2_backlog_seconds() == pytest.approx(9.0)
        # Three pose hosts drain it three times as fast: a window waits a third as long.
        settings.INFERENCE_POSE_WORKERS = 3
        assert backpressure.stage2_backlog_seconds() == pytest.approx(3.0)
    finally:
        client.delete("pose", backpressure._cost_key())


def test_the_reconciler_skips_deferred_windows_past_their_age_and_never_requeues_them(
    settings, world, queued, purge_queues
):
    settings.PENDING_REQUEUE_AFTER_SECONDS = 60
    settings.PENDING_MAX_ATTEMPTS = 3
    settings.INFERENCE_DEFERRED_MAX_AGE_SECONDS = 600
    settings.CASE_PRE_ROLL_SECONDS = 10
    settings.CASE_POST_ROLL_SECONDS = 10
    long_ago = timezone.now() - dt.timedelta(hours=1)
    last_queued = long_ago
    too_old = _stored(
        world.camera_a, 601, status=Segment.Status.PENDING, deferred_at=timezone.now(),
        queued_at=last_queued, analysis_attempts=3,
    )  # fmt: skip
    waiting = _stored(
        world.camera_a, 300, status=Segment.Status.PENDING, deferred_at=timezone.now(),
        queued_at=last_queued, analysis_attempts=3,
    )  # fmt: skip
    # A case around the skipped window keeps its footage under the case's hold.
    case = factories.CaseFactory(
        camera=world.camera_a, started_at=too_old.started_at, ended_at=too_old.ended_at
    )
    report = reconcile.pending_reconcile()
    assert report.expired == [too_old.pk]
    # Deferred windows are known, not lost: neither queued again nor failed for attempts.
    assert report.requeued == [] and report.failed == [] and queued == []
    too_old.refresh_from_db()
    waiting.refresh_from_db()
    assert too_old.status == Segment.Status.SKIPPED
    assert too_old.status_reason == "over capacity: not analysed within 10 min"
    assert waiting.status == Segment.Status.PENDING and waiting.analysis_attempts == 3
    assert too_old in Case.objects.get(pk=case.pk).segments.all()
    # The inference queue is idle and a deferred window waits: idle time is put to use.
    assert report.catch_up_queued
    client = inference.redis_client()
    assert client.llen("inference") == 1
    assert reconcile.pending_reconcile().catch_up_queued is False, "not while one is queued"


def test_a_stuck_window_that_was_never_deferred_still_fails_after_its_attempts(
    settings, world, queued, purge_queues
):
    settings.PENDING_REQUEUE_AFTER_SECONDS = 60
    settings.PENDING_MAX_ATTEMPTS = 3
    stuck = _stored(
        world.camera_a, 3600, status=Segment.Status.PENDING, analysis_attempts=3,
        queued_at=timezone.now() - dt.timedelta(seconds=61),
    )  # fmt: skip
    report = reconcile.pending_reconcile()
    assert report.failed == [stuck.pk] and report.expired == []
    assert report.catch_up_queued is False


# --- The notice -----------------------------------------------------------------------------


def _over_capacity(world: World) -> None:
    """Camera a: 90 s behind, one window deferred, a pose check skipped for capacity."""
    _stored(world.camera_a, 90, status=Segment.Status.PENDING, deferred_at=timezone.now())
    version = factories.ModelVersionFactory()
    gated = {
        "segment__camera": world.camera_a,
        "segment__status": Segment.Status.ANALYSED,
        "model_version": version,
        "stage1_score": 0.5,
    }
    factories.DetectionFactory(
        stage2_skipped=Stage2Skipped.OVER_CAPACITY,
        segment__started_at=_recent()["started_at"],
        **gated,
    )
    factories.DetectionFactory(
        stage2_score=0.4, segment__started_at=_recent()["started_at"], **gated
    )
    # Camera b is fine: a window scored at once.
    factories.DetectionFactory(
        segment__camera=world.camera_b,
        segment__status=Segment.Status.ANALYSED,
        model_version=version,
    )


def _page(user, name: str, pk: int, lang: str = "en"):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client.get(reverse(name, args=[pk]), HTTP_ACCEPT_LANGUAGE=lang)


@pytest.mark.parametrize("who", ["alice", "olga"])
def test_the_camera_admin_and_operators_see_over_capacity_and_why(world, settings, who):
    settings.INFERENCE_MAX_LAG_SECONDS = 30
    _over_capacity(world)
    user = getattr(world, who)
    for name, pk in [
        ("site-detail", world.site_a.pk),
        ("camera-detail", world.camera_a.pk),
        ("camera-wall", world.site_a.pk),
    ]:
        page = _page(user, name, pk).content.decode()
        assert page.count("Over capacity") == 1, (name, page)
        behind = re.search(r"analysis is (\d+) s behind", page)
        assert behind is not None and int(behind[1]) >= 90, name
        assert "1 window waits to be analysed when the load drops" in page, name
        assert "pose check skipped for 50% of windows in the last 5 minutes" in page, name
    korean = _page(user, "camera-detail", world.camera_a.pk, lang="ko").content.decode()
    assert "용량 초과" in korean and re.search(r"분석이 \d+초 늦어지고 있습니다", korean)
    # The other camera, fine, shows no notice.
    assert "Over capacity" not in _page(user, "camera-detail", world.camera_b.pk).content.decode()


def test_another_centre_and_outsiders_never_see_it(world):
    _over_capacity(world)
    # Bob runs site b: site a's pages are not his, and his own show nothing of camera a.
    assert _page(world.bob, "site-detail", world.site_a.pk).status_code == 404
    assert _page(world.bob, "camera-detail", world.camera_a.pk).status_code == 404
    assert _page(world.bob, "camera-wall", world.site_a.pk).status_code == 404
    assert "Over capacity" not in _page(world.bob, "site-detail", world.site_b.pk).content.decode()
    for outsider in (world.charlie, world.lee, world.erin):
        for name, pk in [
            ("site-detail", world.site_a.pk),
            ("camera-detail", world.camera_a.pk),
            ("camera-wall", world.site_a.pk),
        ]:
            response = _page(outsider, name, pk)
            assert response.status_code in (403, 404), (outsider, name, response.status_code)
            assert b"Over capacity" not in response.content
    anonymous = _page(None, "site-detail", world.site_a.pk)
    assert anonymous.status_code == 302 and b"Over capacity" not in anonymous.content


def test_the_notice_ends_when_the_trouble_is_older_than_its_span(world, settings):
    from detection.capacity import capacity_notes

    settings.CAPACITY_NOTICE_MINUTES = 5
    settings.INFERENCE_DEFERRED_MAX_AGE_SECONDS = 600
    version = factories.ModelVersionFactory()
    factories.DetectionFactory(
        segment__started_at=_recent()["started_at"],
        segment__camera=world.camera_a,
        segment__status=Segment.Status.ANALYSED,
        model_version=version,
        stage2_skipped=Stage2Skipped.OVER_CAPACITY,
    )
    # A window skipped for capacity (stored 11 min ago: skipped about a minute ago).
    _stored(world.camera_a, 660, status=Segment.Status.SKIPPED, deferred_at=timezone.now())
    note = capacity_notes([world.camera_a.pk])[world.camera_a.pk]
    assert note.skipped == 1 and note.stage2_skipped == 1 and note.stage2_gated == 1
    later = timezone.now() + dt.timedelta(minutes=6)
    assert capacity_notes([world.camera_a.pk], now=later) == {}


def test_the_camera_notice_metrics_and_bench_count_the_same_capacity_skips(world, settings):
    """One predicate (backpressure.skipped_for_capacity) behind all three counts: windows the
    reconciler skipped after they were deferred, not the motion gate's skips, windows deferred
    and still waiting or scored in idle time, or failed windows."""
    from bench.bench_pipeline import capacity_counts
    from detection.capacity import capacity_notes
    from tests.abusewatch.test_metrics import as_user, one, scrape

    settings.CAPACITY_NOTICE_MINUTES = 5
    settings.INFERENCE_DEFERRED_MAX_AGE_SECONDS = 600
    now = timezone.now()
    camera, other = world.camera_a, world.camera_b
    reason = backpressure.deferred_skip_reason()
    expiring = _stored(camera, 601, status=Segment.Status.PENDING, deferred_at=now)
    _stored(camera, 700, status=Segment.Status.SKIPPED, deferred_at=now, status_reason=reason)
    _stored(camera, 10, status=Segment.Status.SKIPPED)  # no motion
    _stored(camera, 300, status=Segment.Status.PENDING, deferred_at=now)
    _stored(camera, 400, status=Segment.Status.ANALYSED, deferred_at=now)
    _stored(camera, 30, status=Segment.Status.FAILED, status_reason="no frames")
    _stored(other, 650, status=Segment.Status.SKIPPED, deferred_at=now, status_reason=reason)
    assert reconcile.deferred_expire() == [expiring.pk]

    assert Segment.objects.filter(backpressure.skipped_for_capacity(), camera=camera).count() == 2
    assert capacity_notes([camera.pk])[camera.pk].skipped == 2
    samples = scrape(as_user(world.olga))
    labels = {"camera": str(camera.pk), "camera_name": camera.name, "site": str(camera.site_id)}
    assert one(samples, "abusewatch_windows_skipped_over_capacity_total", **labels) == 2
    measured = Segment.objects.filter(camera=camera)
    assert capacity_counts(measured)["windows_skipped_for_capacity"] == 2
