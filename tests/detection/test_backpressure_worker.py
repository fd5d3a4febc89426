"""A real Celery inference worker meets a backlog: the newest windows are scored first, the
old ones are deferred and scored in idle time once the fresh ones are done, none is left
pending. The lag bounds are set for the worker process through its environment; the backlog
is made by storing the windows before the worker starts and dating half of them back."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pytest
from django.db import transaction
from django.utils import timezone

from bench.clips import fixture_clips
from detection import inference
from detection.models import Detection, Segment, Stage2Skipped
from tests.detection.test_backpressure_model import _age, _store
from tests.support.live import Process, child_env, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FRESH, OLD = 16, 16


def test_a_worker_scores_the_newest_first_and_the_deferred_in_idle_time(
    world, active_model, model_dir: Path, purge_queues, tmp_path
):
    detector = inference.detector_for(active_model.artifact_path, card=active_model.card)
    frames = np.stack(inference.frames_decode(fixture_clips()[0], spec=detector.spec))
    base = timezone.now() - dt.timedelta(days=8)
    with transaction.atomic():
        windows = [
            _store(world.camera_b, base + dt.timedelta(seconds=2 * i), frames)
            for i in range(OLD + FRESH)
        ]
    ids = [segment.pk for segment in windows]
    old, fresh = ids[:OLD], ids[OLD:]
    # Stored five minutes ago: far behind the worker's lag bound. The fresh ones stay within
    # it however long the worker takes to start (two minutes).
    _age(old, 300)
    worker = Process(
        [
            sys.executable, "-m", "celery", "-A", "abusewatch", "worker",
            "-Q", "inference,default", "-P", "solo", "-n", f"backpressure-{id(ids)}@%h",
            "-l", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        ],
        env=child_env(
            model_dir,
            INFERENCE_BATCH_MAX="8",
            INFERENCE_MAX_LAG_SECONDS="120",
            INFERENCE_DEFERRED_MAX_AGE_SECONDS="3600",
            INFERENCE_STAGE2_MAX_LAG_SECONDS="0",
        ),
        log=tmp_path / "worker.log",
    )  # fmt: skip
    try:
        wait_for(
            lambda: not Segment.objects.filter(pk__in=ids, status=Segment.Status.PENDING).exists(),
            timeout=240,
            what="every window of the backlog to be scored",
        )
    finally:
        worker.stop()
        sys.stdout.write(worker.output()[-3000:])
    segments = {s.pk: s for s in Segment.objects.filter(pk__in=ids)}
    assert all(segments[pk].status == Segment.Status.ANALYSED for pk in ids)
    assert all(segments[pk].deferred_at is not None for pk in old), "old windows deferred"
    assert all(segments[pk].deferred_at is None for pk in fresh), "fresh windows scored at once"
    order = list(
        Detection.objects.filter(segment_id__in=ids)
        .order_by("pk")
        .values_list("segment_id", flat=True)
    )
    assert len(order) == len(ids)
    # The first batch (the first message's own window and the newest 7) holds the newest.
    assert ids[-1] in order[:8], order
    # Every fresh window was scored before any deferred one (idle time comes last).
    assert set(order[:FRESH]) == set(fresh), order
    assert not Detection.objects.filter(segment_id__in=ids, stage2_score__isnull=False).exists(), (
        "no stage 2 with a zero budget"
    )
    assert (
        not Detection.objects.filter(segment_id__in=ids)
        .exclude(stage2_skipped__in=["", Stage2Skipped.OVER_CAPACITY])
        .exists()
    )
