"""An inference worker SIGKILLed mid-batch: every window is still scored once, within 2 minutes.

The killed task's message stays unacknowledged in Redis for the broker's visibility timeout
(an hour); the reconciler, run by a real beat on the default queue, queues the window again.
The shipped bound (PENDING_REQUEUE_AFTER_SECONDS, RECONCILE_INTERVAL_SECONDS) is used as is.
"""

from __future__ import annotations

import datetime as dt
import signal
import sys
import time

import pytest
from django.conf import settings
from django.utils import timezone

from cameras.models import Camera
from detection.models import Detection, Segment
from tests.detection.test_inference_tasks import make_segment
from tests.faults.conftest import beat, duplicated_detections, pipeline_worker, wait_until
from tests.support.live import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.faults,
    pytest.mark.slow,
    pytest.mark.usefixtures("no_heartbeats", "media_root", "purge_queues"),
    pytest.mark.timeout(400),
]

WINDOWS = 6
BOUND_SECONDS = 120.0


def test_a_worker_killed_mid_batch_loses_no_window_and_scores_none_twice(
    world, active_model, model_dir, tmp_path
):
    camera = world.camera_b
    Camera.objects.filter(pk=camera.pk).update(low_threshold=0.0, high_threshold=0.9999)
    first = pipeline_worker("doomed", model_dir=model_dir, log=tmp_path / "doomed.log")
    scheduler = beat(model_dir=model_dir, folder=tmp_path)
    second = None
    try:
        start = timezone.now() - dt.timedelta(days=1)
        windows = [
            make_segment(camera, start + dt.timedelta(seconds=2 * n)).pk for n in range(WINDOWS)
        ]
        # Mid-task: the worker took a window and is loading the model or scoring.
        wait_for(
            lambda: "Task detection.analyse_segment" in first.output(),
            timeout=90,
            what="the worker to take a window",
        )
        time.sleep(0.5)
        first.stop(signal.SIGKILL)
        left = Segment.objects.filter(pk__in=windows, status=Segment.Status.PENDING).count()
        assert left > 0, "the worker finished before it was killed: nothing was in flight"

        # What the supervisor does: start the worker again.
        second = pipeline_worker("restarted", model_dir=model_dir, log=tmp_path / "second.log")
        took = wait_until(
            lambda: (
                Segment.objects.filter(pk__in=windows, status=Segment.Status.ANALYSED).count()
                == WINDOWS
            ),
            timeout=BOUND_SECONDS + 30,
            interval=1.0,
        )
        scored = Segment.objects.filter(pk__in=windows, status=Segment.Status.ANALYSED).count()
        pending = Segment.objects.filter(pk__in=windows, status=Segment.Status.PENDING).count()
        duplicates = duplicated_detections()
        figure = (
            f"{scored}/{WINDOWS} windows scored {took:.0f} s after SIGKILL with {left} in flight "
            f"or queued (bound {BOUND_SECONDS:g} s; requeue after "
            f"{settings.PENDING_REQUEUE_AFTER_SECONDS:g} s, reconciler every "
            f"{settings.RECONCILE_INTERVAL_SECONDS:g} s); {pending} pending; "
            f"{duplicates} duplicated detections"
        )
        sys.stdout.write(f"FIGURE: {figure}\n")
        assert scored == WINDOWS and took <= BOUND_SECONDS, figure
        assert duplicates == 0, figure
        assert Detection.objects.filter(segment_id__in=windows).count() == WINDOWS, figure
    finally:
        for process in (first, second, scheduler):
            if process is not None:
                process.stop()
