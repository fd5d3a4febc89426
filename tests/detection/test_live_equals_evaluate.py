"""The live path runs the shipped cascade exactly as `ml.evaluate` does (issue #12, item 5).

A fixture clip is played through the live system and the Detection it gets is compared with
the score `ml.evaluate` gives the same clip (`ml.evaluate.score_file` with the same
`CascadeDetector`), within 1e-3:

- camera path: a file camera replays the clip -> `run_ingest` reader (frames sampled with
  `ml.frames`, resized as training resizes) -> segment -> a real Celery inference worker;
- edge path: the clip is pushed to /api/edge/clips/ -> a real inference worker;
- edge path with stage 2 on its own `pose` queue, served by a second real worker process.

Window settings: the camera's window is 3 s with no overlap, longer than the ~2-s clip, so the
window is still open when the clip ends and the reader's flush closes it: one segment holds every
frame of the clip, from its first keyframe, at the camera's analysis rate of 10 fps (the card's
`input_spec.fps`). That is the unit `ml.evaluate` scores: stage 1 the mean over the clip's 1.6-s
windows every 0.4 s, the gate, stage 2 (pose) on the whole clip's full-size frames, the card's
fusion. Shorter windows would split the clip into segments that `ml.evaluate` never scores.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from cameras.models import Camera
from cameras.services import camera_issue_upload_token
from detection.models import Detection, Segment
from tests.detection.test_edge_clips import push
from tests.support.live import Process, child_env, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CLIP = Path(settings.BASE_DIR) / "tests/fixtures/surveillance-fight/fight/fi044.mp4"
TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def evaluate_score() -> tuple[float, float, float | None]:
    """(fused, stage 1, stage 2) of the clip as `ml.evaluate` scores it."""
    from ml.evaluate import score_file
    from ml.runtime import CascadeDetector

    detector = CascadeDetector.load(settings.DEFAULT_MODEL_DIR)
    result = score_file(CLIP, detector)
    return result.fused, result.stage1, result.stage2


def start_worker(name: str, queues: str, tmp_path: Path, **env: str) -> Process:
    return Process(
        [
            sys.executable, "-m", "celery", "-A", "abusewatch", "worker",
            "-Q", queues, "-P", "solo", "-n", f"{name}-{os.getpid()}@%h", "-l", "INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ],
        env=child_env(Path(settings.DEFAULT_MODEL_DIR), **env),
        log=tmp_path / f"{name}.log",
    )  # fmt: skip


@pytest.fixture
def shipped_model(db: None) -> Iterator[None]:
    from detection.model_versions import model_version_register

    version = model_version_register(artifact_dir=Path(settings.DEFAULT_MODEL_DIR), activate=True)
    assert version.card["schema"] == 2, "the shipped default is the cascade"
    yield


def assert_scored_as_evaluate(detection: Detection, expected: tuple[float, float, float | None]):
    fused, stage1, stage2 = expected
    assert detection.stage1_score == pytest.approx(stage1, abs=TOLERANCE)
    if stage2 is None:
        assert detection.stage2_score is None
    else:
        assert detection.stage2_score == pytest.approx(stage2, abs=TOLERANCE)
        assert detection.stage2_ms is not None and detection.stage2_ms > 0
    assert detection.score == pytest.approx(fused, abs=TOLERANCE)


def test_a_camera_window_scores_what_ml_evaluate_gives_the_clip(
    world, shipped_model, celery_worker, purge_queues, evaluate_score, tmp_path
):
    folder = tmp_path / "camera"
    folder.mkdir()
    shutil.copy(CLIP, folder / CLIP.name)
    camera = world.camera_a
    Camera.objects.filter(pk=camera.pk).update(
        source_uri=str(folder), window_seconds=3.0, window_overlap_seconds=0.0, analysis_fps=10.0
    )
    ingest = Process(
        [sys.executable, "manage.py", "run_ingest"],
        env=child_env(Path(settings.DEFAULT_MODEL_DIR), INGEST_POLL_SECONDS="1"),
        log=tmp_path / "ingest.log",
    )
    try:
        detection = wait_for(
            lambda: (
                Detection.objects.filter(segment__camera=camera)
                .order_by("segment__started_at")
                .first()
            ),
            timeout=180,
            what="the replayed clip's detection",
        )
    finally:
        ingest.stop()
        sys.stdout.write(ingest.output()[-3000:])
    segment = detection.segment
    # One segment is the whole clip: the reader kept every analysis frame of it.
    assert segment.source == Segment.Source.INGEST
    assert segment.frame_count == 60
    assert_scored_as_evaluate(detection, evaluate_score)


def test_an_edge_upload_scores_what_ml_evaluate_gives_the_clip(
    world, shipped_model, celery_worker, purge_queues, evaluate_score
):
    token = camera_issue_upload_token(camera=world.camera_a, actor=world.alice)
    started = (timezone.now() - dt.timedelta(days=3)).isoformat()
    response = push(token, CLIP.read_bytes(), started_at=started)
    assert response.status_code == 202, response.content
    detection = wait_for(
        lambda: Detection.objects.filter(segment_id=response.json()["segment"]).first(),
        timeout=120,
        what="the pushed clip's detection",
    )
    assert_scored_as_evaluate(detection, evaluate_score)


def test_stage_two_on_its_own_pose_worker_gives_the_same_score(
    world, shipped_model, purge_queues, evaluate_score, tmp_path, settings
):
    """INFERENCE_POSE_QUEUE=pose: the inference worker scores stage 1 and sends the gated
    window to the `pose` queue, which only the second worker consumes."""
    assert evaluate_score[2] is not None, "the clip must pass the gate for this test"
    inference_worker = start_worker(
        "inference", "inference,default", tmp_path, INFERENCE_POSE_QUEUE="pose"
    )
    pose_worker = start_worker("pose", "pose", tmp_path, INFERENCE_POSE_QUEUE="pose")
    try:
        token = camera_issue_upload_token(camera=world.camera_a, actor=world.alice)
        started = (timezone.now() - dt.timedelta(days=3)).isoformat()
        response = push(token, CLIP.read_bytes(), started_at=started)
        assert response.status_code == 202, response.content
        detection = wait_for(
            lambda: Detection.objects.filter(segment_id=response.json()["segment"]).first(),
            timeout=180,
            what="the pushed clip's detection, finished by the pose worker",
        )
    finally:
        inference_worker.stop()
        pose_worker.stop()
    assert_scored_as_evaluate(detection, evaluate_score)
    # Each half ran where it was routed.
    pose_log, inference_log = pose_worker.output(), inference_worker.output()
    assert "Task detection.score_stage2[" in pose_log
    assert "Task detection.analyse_segment[" not in pose_log
    assert "Task detection.analyse_segment[" in inference_log
    assert "Task detection.score_stage2[" not in inference_log
