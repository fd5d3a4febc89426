"""Recording a score reads the camera once, under its lock, and nothing else it already has.

`detection_store` keeps the window the batch read (its times never change) and reads the
camera's row as it takes the camera's lock, so its thresholds are those of that moment: an
admin's change made while the batch was on the model applies to the windows recorded after it.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from detection.bands import Band
from detection.models import Detection, Segment
from detection.pipeline import Scored, detection_store
from tests import factories

pytestmark = pytest.mark.django_db


def _pending_window(camera) -> Segment:
    began = timezone.now() - dt.timedelta(seconds=10)
    factories.SegmentFactory(
        camera=camera, started_at=began, ended_at=began + dt.timedelta(seconds=2), status="pending"
    )
    # As segments_analyse reads its batch: the camera comes with the window.
    return Segment.objects.select_related("camera").get(camera=camera, started_at=began)


def _scored(segment: Segment, score: float) -> Scored:
    return Scored(segment, score, preprocess_ms=1.0, inference_ms=1.0, batch_size=1)


def test_a_threshold_changed_while_the_batch_was_scored_applies(world) -> None:
    version = factories.ModelVersionFactory(low_threshold=0.3, high_threshold=0.8)
    segment = _pending_window(world.camera_a)
    assert segment.camera.low_threshold is None  # the batch's copy: the model's bands
    # The admin raises the camera's bands while the batch is on the model.
    type(world.camera_a).objects.filter(pk=world.camera_a.pk).update(
        low_threshold=0.6, high_threshold=0.9
    )
    detection = detection_store(scored=_scored(segment, 0.5), version=version)
    assert detection is not None
    assert (detection.low_threshold, detection.high_threshold) == (0.6, 0.9)
    assert detection.band == Band.SAFE  # 0.5 would be uncertain under the model's own bands
    assert Segment.objects.get(pk=segment.pk).status == Segment.Status.ANALYSED


def test_a_window_already_recorded_is_left_alone(world) -> None:
    version = factories.ModelVersionFactory()
    segment = _pending_window(world.camera_a)
    first = detection_store(scored=_scored(segment, 0.1), version=version)
    again = detection_store(scored=_scored(segment, 0.95), version=version)
    assert first is not None and again is None
    assert list(Detection.objects.filter(segment=segment).values_list("score", flat=True)) == [
        pytest.approx(0.1)
    ]


def test_a_safe_window_is_recorded_in_five_statements(world) -> None:
    """The hot path of the inference worker (every window of every camera): the lock with the
    camera, the duplicate check, the open cases, the insert, the status; no second read of
    the window and none for the live message's groups."""
    version = factories.ModelVersionFactory()
    quiet_camera = factories.CameraFactory(site=world.site_a)  # no cases: nothing to triage
    segment = _pending_window(quiet_camera)
    with CaptureQueriesContext(connection) as captured:
        detection = detection_store(scored=_scored(segment, 0.01), version=version)
    assert detection is not None and detection.band == Band.SAFE
    statements = [
        _verb_and_table(query["sql"])
        for query in captured.captured_queries
        if "SAVEPOINT" not in query["sql"]  # the test's own transaction nests the atomic block
    ]
    assert statements == [
        ("SELECT", "cameras_camera"),
        ("SELECT", "detection_detection"),
        ("SELECT", "detection_case"),
        ("INSERT", "detection_detection"),
        ("UPDATE", "detection_segment"),
    ]


def _verb_and_table(sql: str) -> tuple[str, str]:
    table = re.search(r'(?:FROM|INTO|UPDATE) "(\w+)"', sql)
    assert table is not None, sql
    return sql.split()[0], table.group(1)
