"""Inference: idempotent under redelivery, batched, and triage that merges, upgrades, reports."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from bench.clips import fixture_clips
from cameras.models import Camera
from detection.models import Band, Case, Detection, Segment
from detection.pipeline import segment_create, segments_analyse
from detection.tasks import analyse_segment
from reports.models import PoliceReport
from tests.support.live import wait_for
from tests.support.windows import store_clip_window


def make_segment(camera, start, clip=None):
    return store_clip_window(camera, start, clip=clip)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_task_delivered_twice_makes_one_detection_and_one_case(
    world, active_model, celery_worker, purge_queues
):
    Camera.objects.filter(pk=world.camera_b.pk).update(low_threshold=0.0, high_threshold=0.0001)
    start = timezone.now() - dt.timedelta(days=2)
    segment = make_segment(world.camera_b, start)  # on commit: queued once
    # ...and delivered twice more, as a broker does after a lost ack.
    analyse_segment.apply_async(args=(segment.pk,))
    analyse_segment.apply_async(args=(segment.pk,))
    wait_for(
        lambda: Detection.objects.filter(segment=segment).exists(), timeout=90, what="the detection"
    )
    # Let the two duplicates run through the worker before counting.
    marker = make_segment(world.camera_b, start + dt.timedelta(hours=1))
    wait_for(
        lambda: Detection.objects.filter(segment=marker).exists(),
        timeout=60,
        what="a later window, queued after the duplicates",
    )
    assert Detection.objects.filter(segment=segment).count() == 1
    cases = Case.objects.filter(camera=world.camera_b, segments=segment)
    assert cases.count() == 1
    assert PoliceReport.objects.filter(case=cases.get()).count() == 1
    segment.refresh_from_db()
    assert segment.status == Segment.Status.ANALYSED


@pytest.mark.django_db(transaction=True)
def test_batch_scores_many_cameras_once_and_triage_merges_and_upgrades(
    world, active_model, settings, commit_and_react
):
    settings.CASE_MERGE_GAP_SECONDS = 10
    settings.CASE_PRE_ROLL_SECONDS = 2
    settings.CASE_POST_ROLL_SECONDS = 2
    a, b = world.camera_a, world.camera_b
    base = timezone.now() - dt.timedelta(days=5)
    # Camera a: uncertain, uncertain, then violent; camera b: safe only.
    Camera.objects.filter(pk=a.pk).update(low_threshold=0.0, high_threshold=0.9999)
    Camera.objects.filter(pk=b.pk).update(low_threshold=0.9998, high_threshold=0.9999)
    with transaction.atomic():
        pre = make_segment(a, base)
        first = make_segment(a, base + dt.timedelta(seconds=2))
        second = make_segment(a, base + dt.timedelta(seconds=4))
        safe_b = [make_segment(b, base + dt.timedelta(seconds=2 * i)) for i in range(3)]
    # The pre-roll window is safe: thresholds are per camera, so score it alone first.
    Camera.objects.filter(pk=a.pk).update(low_threshold=0.9998, high_threshold=0.9999)
    assert [d.band for d in segments_analyse(segment_ids=[pre.pk])] == [Band.SAFE]
    Camera.objects.filter(pk=a.pk).update(low_threshold=0.0, high_threshold=0.9999)
    detections = segments_analyse(segment_ids=[first.pk, second.pk, *[s.pk for s in safe_b]])
    assert len(detections) == 5
    assert {d.batch_size for d in detections} == {5}
    assert all(d.preprocess_ms > 0 and d.inference_ms > 0 for d in detections)
    assert segments_analyse(segment_ids=[first.pk, second.pk]) == []  # already scored

    case = Case.objects.get(camera=a, started_at__range=(base, base + dt.timedelta(hours=1)))
    assert case.band == Band.UNCERTAIN and case.status == Case.Status.OPEN
    assert set(case.segments.all()) == {pre, first, second}  # pre-roll attached
    assert not Case.objects.filter(
        camera=b, started_at__range=(base, base + dt.timedelta(hours=1))
    ).exists()

    # A violent window 6 s later (within the merge gap) upgrades the same case and reports it.
    Camera.objects.filter(pk=a.pk).update(low_threshold=0.0, high_threshold=0.0001)
    with transaction.atomic():
        violent = make_segment(a, base + dt.timedelta(seconds=8))
    with commit_and_react():  # reports reacts to the violent window: a task queued by name
        segments_analyse(segment_ids=[violent.pk])
    case.refresh_from_db()
    assert (
        Case.objects.filter(
            camera=a, started_at__range=(base, base + dt.timedelta(hours=1))
        ).count()
        == 1
    )
    assert case.band == Band.VIOLENT and case.status == Case.Status.REPORTED
    assert case.police_report.station == world.station_a
    assert case.ended_at == violent.ended_at and violent in case.segments.all()

    # Far later: a new, separate case.
    with transaction.atomic():
        later = make_segment(a, base + dt.timedelta(minutes=5))
    segments_analyse(segment_ids=[later.pk])
    assert (
        Case.objects.filter(
            camera=a, started_at__range=(base, base + dt.timedelta(hours=1))
        ).count()
        == 2
    )


@pytest.mark.django_db(transaction=True)
def test_a_window_whose_footage_is_unreadable_fails_cleanly(world, active_model, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with transaction.atomic():
        segment = segment_create(
            camera_id=world.camera_a.pk,
            started_at=timezone.now(),
            ended_at=timezone.now() + dt.timedelta(seconds=2),
            source=Segment.Source.INGEST,
            original=bad,
            motion_score=0.1,
        )
    assert segments_analyse(segment_ids=[segment.pk]) == []
    segment.refresh_from_db()
    assert segment.status == Segment.Status.FAILED
    assert not Detection.objects.filter(segment=segment).exists()


@pytest.mark.django_db(transaction=True)
def test_still_windows_skip_the_model(world, active_model, settings):
    settings.MOTION_GATE_THRESHOLD = 0.01
    with transaction.atomic():
        still = make_segment(world.camera_a, timezone.now() - dt.timedelta(days=1))
    Segment.objects.filter(pk=still.pk).update(motion_score=0.0)
    with tempfile.TemporaryDirectory() as folder:
        original = Path(folder) / "o.mp4"
        original.write_bytes(fixture_clips()[1].read_bytes())
        gated = segment_create(
            camera_id=world.camera_a.pk,
            started_at=timezone.now(),
            ended_at=timezone.now() + dt.timedelta(seconds=2),
            source=Segment.Source.INGEST,
            original=original,
            motion_score=0.001,
        )
    assert gated.status == Segment.Status.SKIPPED and gated.motion_score == 0.001


@pytest.mark.django_db(transaction=True)
def test_a_reported_case_is_frozen_and_activity_after_it_opens_a_linked_follow_up(
    world, active_model, settings, commit_and_react
):
    """Issue #15: the reported incident grew under the police and no second alert went out."""
    settings.CASE_MERGE_GAP_SECONDS = 10
    settings.CASE_MAX_SECONDS = 120
    a = world.camera_a
    base = timezone.now() - dt.timedelta(days=3)
    Camera.objects.filter(pk=a.pk).update(low_threshold=0.0, high_threshold=0.0001)  # violent
    with transaction.atomic():
        first = make_segment(a, base)
        second = make_segment(a, base + dt.timedelta(seconds=4))
    with commit_and_react():
        segments_analyse(segment_ids=[first.pk])
    reported = Case.objects.get(camera=a, segments=first, started_at=first.started_at)
    assert reported.status == Case.Status.REPORTED
    assert reported.span_end_reason == Case.SpanEnd.REPORTED and reported.span_ended_at
    with commit_and_react():
        segments_analyse(segment_ids=[second.pk])
    reported.refresh_from_db()
    assert (reported.started_at, reported.ended_at) == (first.started_at, first.ended_at)
    follow_up = Case.objects.get(follows=reported)
    assert follow_up.started_at == second.started_at
    # Reported when its span ends, not at each violent window after the first report.
    assert follow_up.status != Case.Status.REPORTED
    assert PoliceReport.objects.filter(case__in=[reported, follow_up]).count() == 1

    # A quiet period later, any window of the camera (here a safe one) ends the follow-up,
    # and the police get it as its own report, linked to the first.
    Camera.objects.filter(pk=a.pk).update(low_threshold=0.9998, high_threshold=0.9999)
    with transaction.atomic():
        quiet = make_segment(a, base + dt.timedelta(seconds=60))
    with commit_and_react():
        segments_analyse(segment_ids=[quiet.pk])
    follow_up.refresh_from_db()
    assert follow_up.span_end_reason == Case.SpanEnd.QUIET
    assert follow_up.status == Case.Status.REPORTED
    assert PoliceReport.objects.filter(case__in=[reported, follow_up]).count() == 2


@pytest.mark.django_db(transaction=True)
def test_continuous_activity_is_cut_at_the_maximum_length_and_a_quiet_gap_ends_a_case(
    world, active_model, settings, commit_and_react
):
    settings.CASE_MERGE_GAP_SECONDS = 10
    settings.CASE_MAX_SECONDS = 6
    a = world.camera_a
    base = timezone.now() - dt.timedelta(days=4)
    Camera.objects.filter(pk=a.pk).update(low_threshold=0.0, high_threshold=0.9999)  # uncertain
    with transaction.atomic():
        windows = [make_segment(a, base + dt.timedelta(seconds=2 * i)) for i in range(5)]
        after_gap = make_segment(a, base + dt.timedelta(seconds=40))
    for window in windows:  # one at a time, as a live camera delivers them
        segments_analyse(segment_ids=[window.pk])
    window_cases = Case.objects.filter(
        camera=a, started_at__range=(base, base + dt.timedelta(minutes=1))
    )
    first = window_cases.get(follows__isnull=True)
    assert first.span_end_reason == Case.SpanEnd.MAX_LENGTH
    assert (first.ended_at - first.started_at).total_seconds() <= 6
    follow_up = window_cases.get(follows=first)
    assert follow_up.span_ended_at is None
    segments_analyse(segment_ids=[after_gap.pk])
    follow_up.refresh_from_db()
    assert follow_up.span_end_reason == Case.SpanEnd.QUIET
    newest = window_cases.get(started_at=after_gap.started_at)
    assert newest.follows_id is None  # after a quiet gap: a new incident, not a follow-up


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_stored_camera_by_camera_in_one_transaction(world, active_model, monkeypatch):
    """One transaction a batch (one wait for SQLite's write lock, not one a window), cameras in
    one order for every worker, each camera's windows in time order; a window that fails to
    store leaves the whole batch pending, and the next try stores it all."""
    from detection import pipeline

    base = timezone.now() - dt.timedelta(days=3)
    a, b = sorted([world.camera_a, world.camera_b], key=lambda camera: camera.pk)
    with transaction.atomic():
        windows = [
            make_segment(b, base + dt.timedelta(seconds=2)),
            make_segment(a, base + dt.timedelta(seconds=2)),
            make_segment(b, base),
            make_segment(a, base),
        ]
    real_store = pipeline.detection_store
    stored: list[tuple[int, dt.datetime]] = []
    failing = {windows[0].pk}  # camera b's later window: the last one stored

    def store(*, scored, version):
        stored.append((scored.segment.camera_id, scored.segment.started_at))
        if scored.segment.pk in failing:
            raise RuntimeError("disk full while storing")
        return real_store(scored=scored, version=version)

    monkeypatch.setattr(pipeline, "detection_store", store)
    ids = [window.pk for window in windows]
    with pytest.raises(RuntimeError, match="disk full"):
        segments_analyse(segment_ids=ids)
    expected_order = [(a.pk, base), (a.pk, base + dt.timedelta(seconds=2)), (b.pk, base)]
    expected_order.append((b.pk, base + dt.timedelta(seconds=2)))
    assert stored == expected_order
    # The three stored before the failure were rolled back with it: nothing half done.
    assert not Detection.objects.filter(segment__in=ids).exists()
    assert set(Segment.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        Segment.Status.PENDING
    }
    failing.clear()
    assert len(segments_analyse(segment_ids=ids)) == 4
    assert Detection.objects.filter(segment__in=ids).count() == 4
