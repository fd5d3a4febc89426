"""A site whose analysis is paused (the storage quota met the legal minimum) keeps recording
its footage, but no new window is queued for the model."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from bench.clips import fixture_clips
from cameras.models import Site
from cameras.services import camera_issue_upload_token
from detection.models import Segment
from tests.conftest import World, api_as

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def push(world: World, started: dt.datetime):
    token = camera_issue_upload_token(camera=world.camera_a, actor=world.alice)
    return api_as(None).post(
        "/api/edge/clips/",
        {
            "clip": SimpleUploadedFile(
                "c.mp4", fixture_clips()[0].read_bytes(), content_type="video/mp4"
            ),
            "started_at": started.isoformat(),
        },
        format="multipart",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_paused_site_records_without_analysing(
    world: World, settings, django_capture_on_commit_callbacks
):
    settings.MOTION_GATE_THRESHOLD = 0.0  # every window would be analysed
    Site.objects.filter(pk=world.site_a.pk).update(
        analysis_paused_at=timezone.now(), analysis_paused_reason="quota"
    )
    started = (timezone.now() - dt.timedelta(hours=1)).replace(microsecond=0)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = push(world, started)
    assert response.status_code == 202, response.json()
    segment = Segment.objects.get(pk=response.json()["segment"])
    assert segment.original and segment.status == Segment.Status.SKIPPED
    assert queued == []

    Site.objects.filter(pk=world.site_a.pk).update(analysis_paused_at=None)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = push(world, started + dt.timedelta(minutes=1))
    assert Segment.objects.get(pk=response.json()["segment"]).status == Segment.Status.PENDING
    assert len(queued) >= 1
