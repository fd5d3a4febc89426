"""Redis stopped for a minute while a real RTSP camera is being ingested: no window is lost.

Ingestion, an inference worker and beat run as processes against a redis-server of the test's
own, which the test kills and starts again empty (no dump: every queued message and cached
frame is gone, as after a crash). Windows stored meanwhile must all be scored once Redis is
back: 0 pending, 0 duplicated detections.

FAULT_REDIS_OUTAGE_SECONDS sets the outage (60, the figure of issue #16, by default and in CI).
The reconciler's bound is shortened for this test only, so the suite does not wait a minute
more for it; tests/faults/test_worker_killed.py measures the shipped bound.

Celery's consumer sometimes dies on the reconnect itself (celery 5.7: "Unrecoverable error:
AttributeError(... 'hostname')" in on_connection_error_after_connected) and its worker exits.
abusewatch.supervisor restarts any process that exits, so the test does what it does: each
wait restarts an exited worker, beat or ingestion, and the figure says how often it had to.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import pytest
from django.utils import timezone

from cameras.models import Camera
from detection.models import Segment
from tests.faults.conftest import (
    beat,
    duplicated_detections,
    fault_env,
    pipeline_worker,
    wait_until,
)
from tests.support.live import Process, wait_for

OUTAGE_SECONDS = float(os.environ.get("FAULT_REDIS_OUTAGE_SECONDS", "60"))

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.faults,
    pytest.mark.slow,
    pytest.mark.usefixtures("no_heartbeats", "media_root"),
    pytest.mark.timeout(int(OUTAGE_SECONDS) + 400),
]

FAST = {
    "PENDING_REQUEUE_AFTER_SECONDS": "15",
    "RECONCILE_INTERVAL_SECONDS": "5",
    "INGEST_POLL_SECONDS": "1",
    "INGEST_BACKOFF_INITIAL_SECONDS": "0.5",
    "INGEST_BACKOFF_MAX_SECONDS": "2",
    "INGEST_READ_TIMEOUT_SECONDS": "3",
    "INGEST_STATUS_SECONDS": "1",
}


def test_redis_stopped_during_ingestion_loses_no_window_and_scores_none_twice(
    world, active_model, model_dir, own_redis, rtsp_server, tmp_path
):
    camera = world.camera_a
    # Safe scores only: this test is about windows, not cases.
    Camera.objects.filter(pk=camera.pk).update(
        source_uri=rtsp_server.url, analysis_fps=5, low_threshold=0.9998, high_threshold=0.9999
    )
    Camera.objects.exclude(pk=camera.pk).update(enabled=False)
    env = {"REDIS_URL": own_redis.url, **FAST}
    worker = pipeline_worker("outage", model_dir=model_dir, log=tmp_path / "worker.log", **env)
    scheduler = beat(model_dir=model_dir, folder=tmp_path, **env)
    ingest = Process(
        [sys.executable, "manage.py", "run_ingest"],
        env=fault_env(model_dir, **env),
        log=tmp_path / "ingest.log",
    )
    windows = Segment.objects.filter(camera=camera)
    supervised = [worker, scheduler, ingest]

    def supervising(check: Callable[[], bool]) -> Callable[[], bool]:
        def check_supervised() -> bool:
            for process in supervised:
                process.restart_if_exited()
            return check()

        return check_supervised

    try:
        wait_for(
            supervising(lambda: windows.filter(status=Segment.Status.ANALYSED).count() >= 2),
            timeout=120,
            what="two windows ingested and scored before the outage",
        )
        own_redis.stop()
        down_at = timezone.now()
        time.sleep(OUTAGE_SECONDS)
        own_redis.start()
        up_at = timezone.now()
        stored_while_down = windows.filter(created_at__gte=down_at, created_at__lt=up_at).count()
        # Ingestion carries on after the outage...
        wait_for(
            supervising(lambda: windows.filter(created_at__gt=up_at).count() >= 2),
            timeout=60,
            what="new windows after Redis came back",
        )
        # ...and is then stopped, so the count of pending windows can reach 0.
        ingest.stop()
        supervised.remove(ingest)
        took = wait_until(
            supervising(lambda: not windows.filter(status=Segment.Status.PENDING).exists()),
            timeout=180,
            interval=1.0,
        )
        pending = windows.filter(status=Segment.Status.PENDING).count()
        failed = windows.filter(status=Segment.Status.FAILED).count()
        duplicates = duplicated_detections()
        figure = (
            f"Redis down {OUTAGE_SECONDS:g} s: {stored_while_down} windows stored meanwhile, "
            f"{windows.count()} in all; {pending} pending {took:.0f} s after ingestion "
            f"stopped, {failed} failed, {duplicates} duplicated detections; restarted "
            f"{worker.restarts} worker, {scheduler.restarts} beat, {ingest.restarts} ingestion"
        )
        sys.stdout.write(f"FIGURE: {figure}\n")
        assert stored_while_down > 0, f"nothing was ingested during the outage: {figure}"
        assert pending == 0, figure
        assert failed == 0, figure
        assert duplicates == 0, figure
    finally:
        for process in (ingest, scheduler, worker):
            process.stop()
            sys.stdout.write(process.output()[-2000:])
