"""/metrics and /healthz under backpressure: the backlog, deferred windows, windows and pose
checks skipped for capacity, the pose queue's depth; health fails only past a bound."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from detection import backpressure, inference
from detection.models import Segment, Stage2Skipped
from tests import factories
from tests.abusewatch.test_metrics import as_user, one, scrape
from tests.conftest import World

pytestmark = pytest.mark.django_db


def _stored(camera, seconds_ago: float, **fields: object) -> Segment:
    segment = factories.SegmentFactory(camera=camera, **fields)
    Segment.objects.filter(pk=segment.pk).update(
        created_at=timezone.now() - dt.timedelta(seconds=seconds_ago)
    )
    return segment


def test_metrics_show_the_backlog_and_what_was_skipped_for_capacity(
    world: World, settings, purge_queues
):
    settings.INFERENCE_POSE_QUEUE = "pose"
    camera = world.camera_a
    now = timezone.now()
    _stored(camera, 20, status=Segment.Status.PENDING)
    _stored(camera, 120, status=Segment.Status.PENDING, deferred_at=now)
    _stored(camera, 90, status=Segment.Status.PENDING, deferred_at=now)
    _stored(camera, 700, status=Segment.Status.SKIPPED, deferred_at=now, status_reason="x")
    _stored(camera, 10, status=Segment.Status.SKIPPED)  # no motion: not a capacity skip
    version = factories.ModelVersionFactory()
    for reason in ["over_capacity", "over_capacity", "unreadable", ""]:
        factories.DetectionFactory(
            segment__camera=camera, model_version=version, stage2_skipped=reason
        )
    client = inference.redis_client()
    client.rpush("pose", "a stage-2 message", "another")
    client.set(backpressure._cost_key(), "1.5")
    try:
        samples = scrape(as_user(world.olga))
    finally:
        client.delete("pose", backpressure._cost_key())
    labels = {"camera": str(camera.pk), "camera_name": camera.name, "site": str(camera.site_id)}
    # The DetectionFactory's own segments are pending too (fresh): 3 + 4 waiting.
    assert one(samples, "abusewatch_windows_pending") == 7
    assert one(samples, "abusewatch_windows_pending_oldest_seconds") >= 120
    assert one(samples, "abusewatch_windows_deferred") == 2
    assert one(samples, "abusewatch_windows_deferred_oldest_seconds") >= 120
    assert one(samples, "abusewatch_windows_skipped_over_capacity_total", **labels) == 1
    assert one(samples, "abusewatch_windows_skipped_total", **labels) == 1
    assert one(samples, "abusewatch_stage2_skipped_total", reason="over_capacity") == 2
    assert one(samples, "abusewatch_stage2_skipped_total", reason="unreadable") == 1
    assert one(samples, "abusewatch_stage2_cost_seconds") == 1.5
    assert one(samples, "abusewatch_queue_depth", queue="pose") == 2


def _health() -> tuple[int, dict[str, Any]]:
    response = Client().get("/healthz")
    return response.status_code, json.loads(response.content)


def test_healthz_tolerates_deferred_windows_until_their_own_bound(world: World, settings):
    settings.HEALTHZ_PENDING_MAX_AGE_SECONDS = 300
    settings.INFERENCE_DEFERRED_MAX_AGE_SECONDS = 600
    settings.RECONCILE_INTERVAL_SECONDS = 20
    deferred = _stored(
        world.camera_a, 400, status=Segment.Status.PENDING, deferred_at=timezone.now()
    )
    _, body = _health()
    # Over capacity, known and shown, is not a stuck pipeline.
    assert body["checks"]["pending"]["ok"] is True, body
    assert body["checks"]["pending"]["deferred"] == 1
    assert body["checks"]["pending"]["count"] == 0
    # Past its bound plus two reconciler runs, the reconciler that skips it is not running.
    Segment.objects.filter(pk=deferred.pk).update(
        created_at=timezone.now() - dt.timedelta(seconds=641)
    )
    status, body = _health()
    assert status == 503 and body["checks"]["pending"]["ok"] is False, body
    # A window never deferred still fails the check past HEALTHZ_PENDING_MAX_AGE_SECONDS.
    Segment.objects.filter(pk=deferred.pk).update(status=Segment.Status.SKIPPED)
    _stored(world.camera_a, 301, status=Segment.Status.PENDING)
    status, body = _health()
    assert status == 503 and body["checks"]["pending"]["count"] == 1, body


def test_stage2_skipped_choices_are_the_ones_metrics_report():
    assert {choice.value for choice in Stage2Skipped} == {"", "over_capacity", "unreadable"}


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"INFERENCE_MAX_LAG_SECONDS": "-1"}, "must be 0 or more"),
        (
            {"INFERENCE_MAX_LAG_SECONDS": "60", "INFERENCE_DEFERRED_MAX_AGE_SECONDS": "60"},
            "INFERENCE_DEFERRED_MAX_AGE_SECONDS must be longer",
        ),
        ({"INFERENCE_STAGE2_MAX_LAG_SECONDS": "soon"}, "INFERENCE_STAGE2_MAX_LAG_SECONDS"),
    ],
)
def test_capacity_settings_that_make_no_sense_are_refused_at_start(environment, message):
    from tests.abusewatch.test_settings import run_manage

    result = run_manage("check", DEBUG="1", **environment)
    assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]
