from __future__ import annotations

import datetime as dt
import math
import time

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from alerts.live import redis_client, websocket_registry_key
from detection.models import Segment
from detection.retention import retention_run
from tests import factories
from tests.conftest import World
from tests.support.storage import footage_segment

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def scrape(client: Client, **headers: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def one(samples, name: str, **labels: str) -> float:
    return samples[name][tuple(sorted(labels.items()))]


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_operator_scrape_reports_the_system(world: World):
    camera = world.camera_a
    camera.measured_fps = 7.5
    camera.status = "online"
    camera.name = 'Play"room\n{evil}'
    camera.save()
    version = factories.ModelVersionFactory()
    for index, (ms, batch) in enumerate([(4.0, 1), (40.0, 8), (400.0, 8), (4000.0, 32)]):
        segment = factories.SegmentFactory(camera=camera, status=Segment.Status.ANALYSED)
        world.uncertain_case_a.segments.add(segment)
        factories.DetectionFactory(
            segment=segment, model_version=version, inference_ms=ms, batch_size=batch
        )
        del index
    now = timezone.now()
    factories.SegmentFactory(
        camera=camera,
        status=Segment.Status.SKIPPED,
        started_at=now,
        ended_at=now + dt.timedelta(seconds=2),
    )
    retention_run(dry_run=False)  # erases nothing of the above: the windows are young or held
    client = redis_client()
    client.delete(websocket_registry_key())
    client.zadd(websocket_registry_key(), {f"socket-{n}": time.time() for n in range(3)})

    samples = scrape(as_user(world.olga))

    cam = {"camera": str(camera.pk), "camera_name": camera.name, "site": str(camera.site_id)}
    assert one(samples, "abusewatch_camera_fps", **cam) == 7.5
    assert one(samples, "abusewatch_camera_status", **cam, status="online") == 1
    assert one(samples, "abusewatch_camera_status", **cam, status="offline") == 0
    assert one(samples, "abusewatch_windows_ingested_total", **cam) == 5
    assert one(samples, "abusewatch_windows_skipped_total", **cam) == 1
    latency = "abusewatch_inference_latency_seconds"
    assert one(samples, f"{latency}_bucket", le="0.005") == 1
    assert one(samples, f"{latency}_bucket", le="0.05") == 2
    assert one(samples, f"{latency}_bucket", le="0.5") == 3
    assert one(samples, f"{latency}_bucket", le="+Inf") == 4
    assert one(samples, f"{latency}_count") == 4
    assert math.isclose(one(samples, f"{latency}_sum"), 4.444)
    assert one(samples, "abusewatch_inference_batch_size_bucket", le="8.0") == 3
    assert one(samples, "abusewatch_inference_batch_size_sum") == 49
    assert one(samples, "abusewatch_cases", band="uncertain", status="open") == 2
    assert one(samples, "abusewatch_cases", band="violent", status="reported") == 1
    assert {labels[0][1] for labels in samples["abusewatch_queue_depth"]} == {
        "inference",
        "default",
    }
    assert one(samples, "abusewatch_websocket_clients") == 3
    assert one(samples, "abusewatch_media_quota_exceeded") == 0
    assert one(samples, "abusewatch_webhook_deliveries", status="failed") == 0


def test_bearer_token_scrape(world: World, settings):
    settings.METRICS_TOKEN = "scrape-token-0123456789"
    footage_segment(world.camera_a, hours_old=1)
    samples = scrape(Client(), Authorization="Bearer scrape-token-0123456789")
    assert "abusewatch_camera_fps" in samples
    assert Client().get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert Client().get("/metrics", headers={"Authorization": "Basic x"}).status_code == 403


@pytest.mark.parametrize("username", ["alice", "erin", "lee", "charlie"])
def test_metrics_refused_to_everyone_but_operators(world: World, username: str):
    assert as_user(getattr(world, username)).get("/metrics").status_code == 403


def test_metrics_refused_to_anonymous_and_without_a_configured_token(world: World, settings):
    settings.METRICS_TOKEN = ""
    response = Client().get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    # An empty token setting must not let an empty bearer in.
    assert Client().get("/metrics", headers={"Authorization": "Bearer "}).status_code == 403
    assert as_user(world.olga).post("/metrics").status_code == 405


def test_windows_stuck_pending_with_an_empty_queue_show_in_the_scrape(world: World):
    # Issue #16: a lost broker left 35 windows pending while the queue depth read 0.
    long_ago = timezone.now() - dt.timedelta(seconds=600)
    for _ in range(3):
        stuck = factories.SegmentFactory(camera=world.camera_a, status=Segment.Status.PENDING)
        Segment.objects.filter(pk=stuck.pk).update(created_at=long_ago)
    factories.SegmentFactory(camera=world.camera_a, status=Segment.Status.ANALYSED)
    samples = scrape(as_user(world.olga))
    assert one(samples, "abusewatch_windows_pending") == 3, "pending windows not counted"
    oldest = one(samples, "abusewatch_windows_pending_oldest_seconds")
    assert 599 <= oldest < 660, f"oldest pending age {oldest} s, expected about 600 s"
