"""A second inference host: two stage-1 workers with their own names on the `inference` queue
and a separate stage-2 worker on the pose queue, as three hosts would run them (README, "A
separate inference host"). They share only what hosts share: the database, Redis and the media
folder, which the second host and the pose host mount at a path of their own.

Every window must be scored exactly once (one detection per window and model version), none
left pending, the gated ones finished by the pose worker (the only process that loads stage
2), and both stage-1 workers must have taken messages from the shared queue.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from abusewatch.heartbeat import beats_read
from bench.clips import fixture_clips
from detection import inference
from detection.models import Detection, Segment, Stage2Skipped
from tests.support.live import Process, child_env, wait_for
from tests.support.windows import store_clip_window

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Windows the gate stops (a calm clip: stage 1 alone) and windows it passes (a fight: stage 2
# runs on the pose worker, about a core-second each here, so few of them).
CALM, FIGHT = 10, 2
# Small batches: the workers drain the shared pending list in several calls each, so both
# hosts' tasks interleave on it instead of one batch taking everything.
BATCH_MAX = 4

_TASK_DONE = re.compile(r"Task (detection\.\w+)\[[^\]]+\] succeeded in [\d.]+s: (\w+)")


def _worker(name: str, queue: str, env: dict[str, str], log: Path) -> Process:
    # The command the README gives a second host: solo pool (one process holds the model),
    # a name of its own (heartbeats and Celery's control commands are keyed by it).
    return Process(
        [
            sys.executable, "-m", "celery", "-A", "abusewatch", "worker",
            "-Q", queue, "-P", "solo", "-n", name,
            "-l", "INFO", "--without-gossip", "--without-mingle",
        ],
        env=env,
        log=log,
    )  # fmt: skip


def _results(log: str) -> list[tuple[str, str]]:
    """(task name, return value) of every task the worker finished, from its own log."""
    return _TASK_DONE.findall(log)


def _windows(camera: Any, frames: dict[str, np.ndarray]) -> list[int]:
    """CALM + FIGHT windows of one camera, 2 s apart. Half the calm ones carry no cached
    frames, so a stage-1 worker decodes their stored original from its own mount."""
    calm, fight = fixture_clips()[5], fixture_clips()[0]
    start = timezone.now() - dt.timedelta(seconds=2 * (CALM + FIGHT) + 5)
    ids = []
    with transaction.atomic():
        for index in range(CALM + FIGHT):
            clip = fight if index % 6 == 5 else calm
            cached = frames[clip.name] if clip is fight or index % 2 == 0 else None
            when = start + dt.timedelta(seconds=2 * index)
            ids.append(store_clip_window(camera, when, clip=clip, frames=cached).pk)
    return ids


def test_two_inference_hosts_and_a_pose_host_score_every_window_once(
    world, active_model, model_dir: Path, purge_queues, tmp_path
):
    assert fixture_clips()[5].name.startswith("nofi") and fixture_clips()[0].name.startswith("fi")
    detector = inference.detector_for(
        active_model.artifact_path, card=active_model.card, with_stage2=False
    )
    if not detector.card.is_cascade:
        pytest.skip("the model under test has no stage 2: the pose host has nothing to do")
    frames = {
        clip.name: np.stack(inference.frames_decode(clip, spec=detector.spec))
        for clip in (fixture_clips()[0], fixture_clips()[5])
    }
    gate = detector.gate_passes(detector.score_stage1_clips(list(frames.values())))
    assert list(gate) == [True, False], "the fight clip passes the gate, the calm one does not"

    # The other hosts mount the media share elsewhere: originals are found by their name
    # relative to MEDIA_ROOT, so only the content must be the same.
    mount = tmp_path / "media-mount"
    mount.symlink_to(Path(settings.MEDIA_ROOT).resolve(), target_is_directory=True)
    suffix = f"{os.getpid()}-{id(tmp_path)}"
    # No beat runs here, so nothing queues a window again; the requeue delay only sets how long
    # a window sent to the pose queue is marked as sent (inference.stage2_claim): longer than
    # this test, so a second pose message for a window would be a bug, not a timing.
    main_host = child_env(
        model_dir,
        INFERENCE_POSE_QUEUE="pose",
        INFERENCE_BATCH_MAX=str(BATCH_MAX),
        PENDING_REQUEUE_AFTER_SECONDS="600",
    )
    other_host = {**main_host, "MEDIA_ROOT": str(mount)}
    workers = {
        "a": _worker(f"inference-a-{suffix}@%h", "inference", main_host, tmp_path / "a.log"),
        "b": _worker(f"inference-b-{suffix}@%h", "inference", other_host, tmp_path / "b.log"),
        "pose": _worker(f"pose-{suffix}@%h", "pose", other_host, tmp_path / "pose.log"),
    }
    try:
        # Both stage-1 workers consume before any window is queued (a worker beats once it is
        # ready: abusewatch.heartbeat); the first task of each then loads the model for
        # seconds, so the other is sure to take messages meanwhile.
        prefixes = [f"inference-{host}-{suffix}@" for host in ("a", "b")] + [f"pose-{suffix}@"]
        wait_for(
            lambda: all(
                any(beat.worker.startswith(prefix) for beat in beats_read()) for prefix in prefixes
            ),
            timeout=180,
            what="the three workers to be ready",
            interval=0.5,
        )
        ids = _windows(world.camera_b, frames)
        wait_for(
            lambda: not Segment.objects.filter(pk__in=ids, status=Segment.Status.PENDING).exists(),
            timeout=180,
            what="every window to be scored",
            interval=0.5,
        )
    finally:
        for worker in workers.values():
            worker.stop()
        for host, worker in workers.items():
            sys.stdout.write(f"--- {host}\n{worker.output()[-2500:]}")

    fights = {ids[i] for i in range(len(ids)) if i % 6 == 5}
    assert len(fights) == FIGHT
    assert set(Segment.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        Segment.Status.ANALYSED
    }
    detections = list(Detection.objects.filter(segment_id__in=ids))
    assert sorted(d.segment_id for d in detections) == sorted(ids), "one detection per window"
    assert {d.model_version_id for d in detections} == {active_model.pk}
    by_window = {d.segment_id: d for d in detections}
    for pk in fights:
        assert by_window[pk].stage2_score is not None, "stage 2 ran on the pose host"
        assert by_window[pk].stage2_skipped == Stage2Skipped.NO
    for pk in set(ids) - fights:
        assert by_window[pk].stage2_score is None and by_window[pk].stage2_ms is None

    results = {host: _results(worker.output()) for host, worker in workers.items()}
    # Stage 1 on both hosts: each took messages from the shared queue. Which windows each
    # one scored depends on timing (and a window queued to both may be scored by the batch of
    # either), so only the totals are checked.
    for host in ("a", "b"):
        analysed = [value for task, value in results[host] if task == "detection.analyse_segment"]
        assert analysed, f"worker {host} took no message: {results[host]}"
    stage1_only = sum(
        int(value)
        for host in ("a", "b")
        for task, value in results[host]
        if task == "detection.analyse_segment"
    )
    assert stage1_only == CALM, "each calm window recorded once, by one of the two hosts"
    assert not any(task == "detection.score_stage2" for h in "ab" for task, _ in results[h])
    # Each gated window reached the pose host once, though the stage-1 workers may both have
    # scored it (its own message, another task's batch): one pose run per window, each stored.
    pose_done = [value for task, value in results["pose"] if task == "detection.score_stage2"]
    assert len(pose_done) == FIGHT and "None" not in pose_done, pose_done
