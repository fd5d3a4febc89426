"""End to end: a camera replaying clips -> segments -> Celery worker -> cases -> websockets."""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db.models import F

from cameras.models import Camera
from detection.models import Band, Case, Detection, Segment
from reports.models import PoliceReport
from tests.support.live import Process, child_env, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_replayed_camera_raises_one_reported_case_and_alerts_the_right_people(
    world, active_model, model_dir, clip_folder, celery_worker, purge_queues, listen, tmp_path
):
    camera = world.camera_a
    # The world's own cases of this camera happened "now"; move them a day back so live windows
    # open a case of their own instead of extending one of those.
    Case.objects.filter(camera=camera).update(
        started_at=F("started_at") - dt.timedelta(days=1),
        ended_at=F("ended_at") - dt.timedelta(days=1),
    )
    # Force every window violent: the test is about the path, not the model's opinion.
    Camera.objects.filter(pk=camera.pk).update(
        source_uri=str(clip_folder), low_threshold=0.0, high_threshold=0.0001
    )
    alice, lee, bob, erin = (listen(u) for u in (world.alice, world.lee, world.bob, world.erin))
    assert all(listener.connected for listener in (alice, lee, bob, erin))

    ingest = Process(
        [sys.executable, "manage.py", "run_ingest"],
        env=child_env(model_dir, INGEST_POLL_SECONDS="1"),
        log=tmp_path / "ingest.log",
    )
    try:
        status = alice.wait(
            lambda m: m["type"] == "camera.status" and m["camera"]["status"] == "online",
            timeout=60,
        )
        assert status["camera"]["id"] == camera.pk
        alert = alice.wait(lambda m: m["type"] == "case.alert", timeout=120)
        police_alert = lee.wait(lambda m: m["type"] == "case.alert", timeout=30)
        # Three clips play back to back: later windows extend the same case.
        wait_for(
            lambda: Detection.objects.filter(segment__camera=camera).count() >= 3,
            timeout=60,
            what="three scored windows",
        )
    finally:
        ingest.stop()
        sys.stdout.write(ingest.output()[-3000:])

    case = Case.objects.get(pk=alert["case"]["id"])
    assert police_alert["case"]["id"] == case.pk
    assert alert["case"]["band"] == "violent" and alert["case"]["camera"] == camera.pk
    assert alert["case"]["status"] == Case.Status.REPORTED
    assert alert["case"]["preview_url"]
    assert case.status == Case.Status.REPORTED and case.band == Band.VIOLENT
    assert PoliceReport.objects.get(case=case).station == world.station_a
    # One incident for consecutive violent windows, not one case per window. Windows triaged
    # before the police report exists extend the case; once it is reported its span is frozen,
    # and later violent windows form one follow-up case linked to it (reported when its own span
    # ends). Which happens depends on how fast the report task runs beside the pose checks.
    incident = Case.objects.filter(camera=camera, band=Band.VIOLENT).exclude(
        pk=world.violent_case_a.pk
    )
    follow_ups = [other for other in incident if other.pk != case.pk]
    assert len(follow_ups) <= 1, [(c.pk, c.follows_id) for c in incident]
    for follow_up in follow_ups:
        assert follow_up.follows_id == case.pk
        assert not PoliceReport.objects.filter(case=follow_up).exists()
    assert sum(other.segments.count() for other in incident) >= 3

    segments = Segment.objects.filter(camera=camera)
    for segment in segments:
        path = Path(segment.original.path)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == segment.original_sha256
        assert path.is_relative_to(Path(settings.MEDIA_ROOT))
        # H.264 remuxed with faststart is already browser-playable: no second file.
        assert segment.preview.name == segment.original.name
        assert segment.ended_at > segment.started_at
    detection = Detection.objects.filter(segment__camera=camera).first()
    assert detection is not None
    assert detection.model_version == active_model
    assert detection.batch_size >= 1 and detection.inference_ms > 0
    assert detection.band == Band.VIOLENT

    # The other centre's admin and the experts (uncertain cases only) heard nothing of it.
    assert not [m for m in bob.drain() if m["type"].startswith("case.")]
    assert not [m for m in erin.drain() if m["type"] == "case.alert"]
    camera.refresh_from_db()
    assert camera.last_frame_at is not None
