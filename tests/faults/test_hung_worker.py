"""A worker SIGSTOPped (hung) while another answers: /healthz fails within its check interval."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import pytest
from django.test import Client

from tests.faults.conftest import pipeline_worker, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.faults,
    pytest.mark.slow,
    pytest.mark.usefixtures("no_heartbeats", "media_root"),
]

BEAT_EVERY = 1.0
STALE_AFTER = 4.0


def healthz() -> tuple[int, dict[str, Any]]:
    response = Client().get("/healthz")
    return response.status_code, response.json()


def test_a_sigstopped_worker_fails_healthz_within_its_check_interval(settings, model_dir, tmp_path):
    settings.WORKER_HEARTBEAT_STALE_SECONDS = STALE_AFTER
    settings.HEALTHZ_PENDING_MAX_AGE_SECONDS = 3600
    beats = {"WORKER_HEARTBEAT_INTERVAL_SECONDS": str(BEAT_EVERY)}
    healthy = pipeline_worker("healthy", model_dir=model_dir, log=tmp_path / "a.log", **beats)
    hung = pipeline_worker("hung", model_dir=model_dir, log=tmp_path / "b.log", **beats)
    try:
        waited = wait_until(lambda: healthz()[0] == 200, timeout=90)
        status, body = healthz()
        assert status == 200, f"two live workers not healthy after {waited:.0f} s: {body}"
        assert body["checks"]["workers"]["count"] == 2, body

        os.killpg(hung.popen.pid, signal.SIGSTOP)
        bound = STALE_AFTER + BEAT_EVERY + settings.HEALTHZ_WORKER_TIMEOUT_SECONDS + 1.0
        took = wait_until(lambda: healthz()[0] == 503, timeout=bound + 10, interval=0.25)
        status, body = healthz()
        assert status == 503 and took <= bound, (
            f"/healthz answered {status} {took:.1f} s after SIGSTOP (bound {bound:.1f} s: "
            f"stale after {STALE_AFTER:g} s, beat every {BEAT_EVERY:g} s): {body}"
        )
        assert body["checks"]["workers"]["hung"] == 1, body
        sys.stdout.write(f"FIGURE: /healthz 503 {took:.1f} s after SIGSTOP (bound {bound:.1f} s)\n")
        # Still failing a while later: the healthy worker's pong does not hide the hung one.
        time.sleep(2)
        assert healthz()[0] == 503

        os.killpg(hung.popen.pid, signal.SIGCONT)
        back = wait_until(lambda: healthz()[0] == 200, timeout=30)
        assert healthz()[0] == 200, f"not healthy {back:.0f} s after SIGCONT"
    finally:
        for process in (hung, healthy):
            if process.popen.poll() is None:
                os.killpg(process.popen.pid, signal.SIGCONT)
            process.stop()
