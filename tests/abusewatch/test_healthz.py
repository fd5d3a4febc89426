from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media_root")]


def healthz() -> tuple[int, dict[str, Any]]:
    response = Client().get("/healthz")
    return response.status_code, response.json()


@pytest.fixture(autouse=True)
def _no_heartbeats_of_other_tests():
    """Workers killed by earlier tests (tests/faults) leave their last beat behind."""
    from abusewatch.heartbeat import heartbeat_key
    from alerts.live import redis_client

    redis_client().delete(heartbeat_key())


def test_healthz_with_a_real_worker_down_then_up():
    status, body = healthz()
    # No worker listens on this test's own Redis yet.
    assert status == 503
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["broker"] == {"ok": True}
    assert body["checks"]["workers"] == {"ok": False, "count": 0}

    env = dict(os.environ, DJANGO_SETTINGS_MODULE="abusewatch.settings_test")
    env["REDIS_URL"] = django_settings.REDIS_URL
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "abusewatch", "worker",
            "-P", "solo", "-Q", f"healthz-{uuid.uuid4().hex[:8]}",
            "-n", f"healthz-{uuid.uuid4().hex[:8]}@%h",
            "--without-mingle", "--without-gossip", "-l", "WARNING",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, body = healthz()
            if status == 200:
                break
            assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
            time.sleep(1)
        assert status == 200, body
        assert body == {
            "status": "ok",
            "checks": {
                "database": {"ok": True},
                "broker": {"ok": True},
                "model": {"ok": True},
                "workers": {"ok": True, "count": 1},
                "pending": {
                    "ok": True,
                    "count": 0,
                    "oldest_seconds": 0.0,
                    "deferred": 0,
                    "oldest_deferred_seconds": 0.0,
                },
            },
        }
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    status, body = healthz()
    assert status == 503 and body["checks"]["workers"]["ok"] is False


def test_healthz_reports_a_broker_that_is_down_without_leaking_its_address(settings):
    settings.REDIS_URL = "redis://:hunter2-secret@127.0.0.1:1/0"
    status, body = healthz()
    assert status == 503
    assert body["checks"]["broker"] == {"ok": False, "error": "ConnectionError"}
    assert body["checks"]["workers"] == {"ok": False, "error": "BrokerDown"}
    assert "hunter2" not in str(body) and "127.0.0.1" not in str(body)


def test_healthz_fails_while_a_window_waits_too_long(settings):
    from django.utils import timezone

    from detection.models import Segment
    from tests import factories

    settings.HEALTHZ_PENDING_MAX_AGE_SECONDS = 300
    stuck = factories.SegmentFactory(status=Segment.Status.PENDING)
    Segment.objects.filter(pk=stuck.pk).update(
        created_at=timezone.now() - dt.timedelta(seconds=301)
    )
    status, body = healthz()
    assert status == 503
    assert body["checks"]["pending"]["ok"] is False and body["checks"]["pending"]["count"] == 1
    assert body["checks"]["pending"]["oldest_seconds"] >= 301


def test_a_stale_heartbeat_fails_the_workers_check(monkeypatch):
    import json

    from abusewatch.celery import app
    from abusewatch.heartbeat import heartbeat_key
    from alerts.live import redis_client

    client = redis_client()
    now = float(client.time()[0])
    client.hset(heartbeat_key(), "fresh@host", json.dumps({"at": now, "pid": 1}))
    client.hset(heartbeat_key(), "hung@host", json.dumps({"at": now - 60, "pid": 2}))
    client.hset(heartbeat_key(), "garbage@host", b"not json")
    # Only the fresh worker answers a ping, as a SIGSTOPped one would not (the real thing:
    # tests/faults/test_hung_worker.py).
    monkeypatch.setattr(app.control, "ping", lambda timeout: [{"fresh@host": {"ok": "pong"}}])
    status, body = healthz()
    assert status == 503
    assert body["checks"]["workers"] == {"ok": False, "count": 1, "hung": 1}
    assert "hung@host" not in str(body)
