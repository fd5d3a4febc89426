from __future__ import annotations

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
