"""A window the gate passes goes to the pose queue once, however many stage-1 tasks score it.

It stays pending until the pose worker stores its detection, so its own message (or a batch
of another inference worker that drained its id) scores stage 1 again; sent twice, pose would
run twice on two pose workers and admission control would read the pose backlog double.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
from django.utils import timezone

from bench.clips import fixture_clips
from detection import inference, pipeline
from detection.models import Detection, Segment
from tests.support.sent import SentTasks
from tests.support.windows import store_clip_window

pytestmark = pytest.mark.django_db(transaction=True)


class PoseQueued(NamedTuple):
    """Stage 1 here, stage 2 on the pose queue; a fight clip the gate passes and a calm one
    it stops, with their analysis frames."""

    detector: Any
    fight: Path
    calm: Path
    clips: dict[Path, np.ndarray]


@pytest.fixture
def pose_queued(active_model, settings, purge_queues) -> PoseQueued:
    settings.INFERENCE_POSE_QUEUE = "pose"
    settings.PENDING_REQUEUE_AFTER_SECONDS = 60
    detector = inference.detector_for(
        active_model.artifact_path, card=active_model.card, with_stage2=False
    )
    if not detector.card.is_cascade:
        pytest.skip("the model under test has no stage 2")
    fight, calm = fixture_clips()[0], fixture_clips()[5]
    clips = {
        clip: np.stack(inference.frames_decode(clip, spec=detector.spec)) for clip in (fight, calm)
    }
    return PoseQueued(detector, fight, calm, clips)


def test_a_gated_window_is_sent_to_the_pose_queue_once_until_the_mark_expires(
    world, pose_queued: PoseQueued, monkeypatch
):
    detector, fight, calm, clips = pose_queued
    assert list(detector.gate_passes(detector.score_stage1_clips(list(clips.values())))) == [
        True,
        False,
    ]
    start = timezone.now() - dt.timedelta(seconds=10)
    gated = store_clip_window(world.camera_b, start, clip=fight, frames=clips[fight])
    stopped = store_clip_window(
        world.camera_b, start + dt.timedelta(seconds=2), clip=calm, frames=clips[calm]
    )
    sent = SentTasks()
    monkeypatch.setattr(pipeline, "signature", sent)

    first = pipeline.segments_analyse(segment_ids=[gated.pk, stopped.pk])
    assert [d.segment_id for d in first] == [stopped.pk], "the stopped window is decided here"
    assert [kwargs["segment_id"] for kwargs in sent.named(pipeline.STAGE2_TASK)] == [gated.pk]

    # The window's own message, or another host's batch: stage 1 again, no second pose message.
    assert pipeline.segments_analyse(segment_ids=[gated.pk]) == []
    assert len(sent.named(pipeline.STAGE2_TASK)) == 1
    assert Segment.objects.get(pk=gated.pk).status == Segment.Status.PENDING
    assert not Detection.objects.filter(segment=gated).exists()

    # The mark lasts at most half the reconciler's requeue delay: a window whose pose message
    # was lost is sent again when the reconciler queues it again.
    client = inference.redis_client()
    key = inference._key("stage2-sent", gated.pk)
    assert 0 < client.ttl(key) <= 30
    client.delete(key)
    pipeline.segments_analyse(segment_ids=[gated.pk])
    assert [kwargs["segment_id"] for kwargs in sent.named(pipeline.STAGE2_TASK)] == [
        gated.pk,
        gated.pk,
    ]
    client.delete(key)


def test_a_window_already_on_the_pose_queue_is_not_scored_again_on_stage1(
    world, pose_queued: PoseQueued, monkeypatch
):
    detector, fight, calm, clips = pose_queued
    start = timezone.now() - dt.timedelta(seconds=10)
    gated = store_clip_window(world.camera_b, start, clip=fight, frames=clips[fight])
    sent = SentTasks()
    monkeypatch.setattr(pipeline, "signature", sent)
    scored_windows: list[int] = []  # windows per stage-1 model call
    score_stage1 = detector.score_stage1_clips

    def counting(windows: Any) -> Any:
        scored_windows.append(len(windows))
        return score_stage1(windows)

    monkeypatch.setattr(detector, "score_stage1_clips", counting)
    key = inference._key("stage2-sent", gated.pk)
    try:
        assert pipeline.segments_analyse(segment_ids=[gated.pk]) == []
        assert scored_windows == [1]
        assert [kwargs["segment_id"] for kwargs in sent.named(pipeline.STAGE2_TASK)] == [gated.pk]

        # Redelivered with a fresh window beside it: the model scores the fresh one only.
        fresh = store_clip_window(
            world.camera_b, start + dt.timedelta(seconds=2), clip=calm, frames=clips[calm]
        )
        [decided] = pipeline.segments_analyse(segment_ids=[gated.pk, fresh.pk])
        assert decided.segment_id == fresh.pk
        assert scored_windows == [1, 1]
        assert pipeline.segments_analyse(segment_ids=[gated.pk]) == []
        assert scored_windows == [1, 1], "no model call for a window on the pose queue"
        assert len(sent.named(pipeline.STAGE2_TASK)) == 1

        # The pose worker finishes it: one detection, and nothing left for stage 1.
        [kwargs] = sent.named(pipeline.STAGE2_TASK)
        assert pipeline.segment_finish_stage2(**kwargs) is not None
        assert Detection.objects.filter(segment=gated).count() == 1
        assert Segment.objects.get(pk=gated.pk).status == Segment.Status.ANALYSED
        assert pipeline.segments_analyse(segment_ids=[gated.pk]) == []
        assert Detection.objects.filter(segment=gated).count() == 1
        assert scored_windows == [1, 1]
    finally:
        inference.redis_client().delete(key)
