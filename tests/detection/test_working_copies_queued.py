"""A growing case queues its working copies once until that task starts, not once a window.

Every non-safe window extends its case; each used to queue a working-copies task, and the
media worker then listed the case's whole footage again for every one of them.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import redis
from django.utils import timezone

from cameras.models import Camera
from detection import inference, pipeline
from detection.models import Case
from reports.tasks import make_working_copies
from tests.support.sent import SentTasks
from tests.support.windows import store_clip_window

pytestmark = pytest.mark.django_db(transaction=True)

TASK = pipeline.MAKE_WORKING_COPIES_TASK


@pytest.fixture
def violent_camera(world, active_model, settings, monkeypatch):
    """Camera A, where every window is violent, and the tasks its windows queue, recorded."""
    settings.WORKING_COPIES_AHEAD = True
    settings.CASE_MERGE_GAP_SECONDS = 30
    Camera.objects.filter(pk=world.camera_a.pk).update(low_threshold=0.0, high_threshold=0.0001)
    sent = SentTasks()
    monkeypatch.setattr(pipeline, "signature", sent)
    frames = np.zeros((20, 64, 64, 3), dtype=np.uint8)
    start = timezone.now() - dt.timedelta(minutes=5)

    def window(index: int) -> None:
        segment = store_clip_window(
            world.camera_a, start + dt.timedelta(seconds=2 * index), frames=frames + index
        )
        assert len(pipeline.segments_analyse(segment_ids=[segment.pk])) == 1

    earlier = set(Case.objects.values_list("pk", flat=True))
    yield world.camera_a, sent, window, earlier
    for case_id in Case.objects.values_list("pk", flat=True):
        inference.working_copies_started(case_id)  # no mark outlives the test


def test_windows_that_grow_a_case_queue_one_task_until_it_starts(violent_camera):
    camera, sent, window, earlier = violent_camera
    for index in range(4):
        window(index)
    case = Case.objects.exclude(pk__in=earlier).get(camera=camera)
    assert case.segments.count() == 4
    assert sent.named(TASK) == [{"case_id": case.pk}], "one task for the four windows"

    # The task starts: windows attached from now on are not in what it reads, so the next
    # window queues the next task, and the one after that waits for it again.
    make_working_copies(case.pk)
    window(4)
    assert sent.named(TASK) == [{"case_id": case.pk}] * 2
    window(5)
    assert len(sent.named(TASK)) == 2


def test_the_mark_expires_so_a_lost_task_does_not_stop_the_copies(violent_camera):
    camera, sent, window, earlier = violent_camera
    window(0)
    case = Case.objects.exclude(pk__in=earlier).get(camera=camera)
    client = inference.redis_client()
    key = inference._key("working-copies-queued", case.pk)
    assert 0 < client.ttl(key) <= inference.WORKING_COPIES_MARK_SECONDS
    client.delete(key)  # as if the mark had expired, its task never having started
    window(1)
    assert len(sent.named(TASK)) == 2


def test_without_a_working_redis_every_window_queues(monkeypatch):
    # A real client to a port nothing listens on: every command fails to connect. The window
    # is stored already; a task too many costs a query, a missing copy a viewer's wait.
    dead = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    monkeypatch.setattr(inference, "redis_client", lambda: dead)
    assert inference.working_copies_claim(7) is True
    assert inference.working_copies_claim(7) is True
    inference.working_copies_started(7)  # logged, not raised: the copies still get made
    monkeypatch.setattr(inference, "redis_client", lambda: None)  # one process, no Redis
    assert inference.working_copies_claim(7) is True
