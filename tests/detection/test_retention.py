from __future__ import annotations

import logging
from io import StringIO
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.management import call_command

from audit.models import AuditEvent
from cameras.models import Site
from detection.models import Case, RetentionRun, Segment
from detection.retention import media_usage_bytes, retention_run
from detection.tasks import retention_sweep
from tests import factories
from tests.conftest import World
from tests.support.storage import footage_segment

# A little over Korea's 60 days.
PAST_LEGAL_MINIMUM = 61 * 24

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def paths_of(segment: Segment) -> list[Path]:
    return [Path(segment.original.path), Path(segment.preview.path)]


def test_old_safe_footage_goes_and_held_footage_stays(world: World):
    old_safe = footage_segment(world.camera_a, hours_old=PAST_LEGAL_MINIMUM)
    young_safe = footage_segment(world.camera_a, hours_old=1)
    pending = footage_segment(
        world.camera_a, hours_old=PAST_LEGAL_MINIMUM, status=Segment.Status.PENDING
    )
    open_case_footage = footage_segment(world.camera_a, hours_old=PAST_LEGAL_MINIMUM)
    world.uncertain_case_a.segments.add(open_case_footage)
    reported_footage = footage_segment(world.camera_a, hours_old=PAST_LEGAL_MINIMUM)
    world.violent_case_a.segments.add(reported_footage)
    dismissed_footage = footage_segment(world.camera_b, hours_old=PAST_LEGAL_MINIMUM)
    dismissed = factories.CaseFactory(camera=world.camera_b, status=Case.Status.DISMISSED)
    dismissed.segments.add(dismissed_footage)
    old_safe_files = paths_of(old_safe)
    kept = [young_safe, pending, open_case_footage, reported_footage]
    kept_files = [path for segment in kept for path in paths_of(segment)]

    report = retention_run(dry_run=False)

    assert {item.segment_id for item in report.erasures} == {old_safe.pk, dismissed_footage.pk}
    old_safe.refresh_from_db()
    assert old_safe.status == Segment.Status.PURGED
    assert not old_safe.original and not old_safe.preview
    assert len(old_safe.original_sha256) == 64  # the row and its hash survive
    assert not any(path.exists() for path in old_safe_files)
    assert all(path.exists() for path in kept_files)
    for segment in kept:
        segment.refresh_from_db()
        assert segment.status != Segment.Status.PURGED
    purges = AuditEvent.objects.filter(action="segment.purge")
    assert {event.object_id for event in purges} == {str(old_safe.pk), str(dismissed_footage.pk)}
    assert purges.get(object_id=str(old_safe.pk)).details["original_sha256"] == (
        old_safe.original_sha256
    )
    # A second run is idempotent.
    assert retention_run(dry_run=False).erasures == []


def test_reported_case_footage_is_held_even_after_the_case_closes(world: World):
    footage = footage_segment(world.camera_a, hours_old=PAST_LEGAL_MINIMUM + 400)
    world.violent_case_a.segments.add(footage)
    Case.objects.filter(pk=world.violent_case_a.pk).update(status=Case.Status.CLOSED)
    retention_run(dry_run=False)
    footage.refresh_from_db()
    assert footage.status == Segment.Status.ANALYSED
    assert all(path.exists() for path in paths_of(footage))


def test_retention_follows_each_sites_hours(world: World):
    # Site A keeps footage longer than the law asks; site B keeps the legal minimum.
    world.site_a.retention_hours = PAST_LEGAL_MINIMUM + 100
    world.site_a.save()
    old_a = footage_segment(world.camera_a, hours_old=PAST_LEGAL_MINIMUM)
    old_b = footage_segment(world.camera_b, hours_old=PAST_LEGAL_MINIMUM)
    report = retention_run(dry_run=False)
    assert [item.segment_id for item in report.erasures] == [old_b.pk]
    old_a.refresh_from_db()
    assert old_a.status == Segment.Status.ANALYSED


def test_dry_run_command_lists_and_changes_nothing(world: World):
    old = footage_segment(world.camera_a, hours_old=PAST_LEGAL_MINIMUM)
    out = StringIO()
    call_command("retention", "--dry-run", stdout=out)
    assert f"would erase segment {old.pk} " in out.getvalue()
    assert "1 segment(s) would erase" in out.getvalue()
    old.refresh_from_db()
    assert old.status == Segment.Status.ANALYSED
    assert all(path.exists() for path in paths_of(old))
    assert not AuditEvent.objects.filter(action="segment.purge").exists()
    assert not RetentionRun.objects.exists()

    out = StringIO()
    call_command("retention", stdout=out)
    assert f"erased segment {old.pk} " in out.getvalue()
    old.refresh_from_db()
    assert old.status == Segment.Status.PURGED
    assert RetentionRun.objects.get().trigger == RetentionRun.Trigger.COMMAND


def test_quota_erases_oldest_safe_footage_first(world: World, settings):
    # The site keeps footage a year: the quota may take what is past the legal minimum.
    Site.objects.filter(pk=world.site_a.pk).update(retention_hours=24 * 365)
    held = footage_segment(world.camera_a, hours_old=PAST_LEGAL_MINIMUM + 10, size=5000)
    world.uncertain_case_a.segments.add(held)
    oldest = footage_segment(world.camera_a, hours_old=PAST_LEGAL_MINIMUM + 9, size=5000)
    middle = footage_segment(world.camera_a, hours_old=PAST_LEGAL_MINIMUM + 8, size=5000)
    newest = footage_segment(world.camera_a, hours_old=PAST_LEGAL_MINIMUM + 7, size=5000)
    usage = media_usage_bytes()
    # Room for everything but about one segment: the oldest safe one must go, only it.
    settings.MEDIA_QUOTA_BYTES = usage - 5000

    report = retention_run(dry_run=False)

    assert [(item.segment_id, item.reason) for item in report.erasures] == [(oldest.pk, "quota")]
    assert not report.quota_exceeded
    assert report.storage_bytes <= settings.MEDIA_QUOTA_BYTES
    for segment, status in [(held, "analysed"), (middle, "analysed"), (newest, "analysed")]:
        segment.refresh_from_db()
        assert segment.status == status


def test_quota_that_cannot_be_met_alerts_the_operator(
    world: World, settings, caplog, django_capture_on_commit_callbacks
):
    Site.objects.filter(pk=world.site_a.pk).update(retention_hours=24 * 365)
    held = footage_segment(world.camera_a, hours_old=10, size=20_000)
    world.uncertain_case_a.segments.add(held)
    safe = footage_segment(world.camera_a, hours_old=PAST_LEGAL_MINIMUM, size=100)
    settings.MEDIA_QUOTA_BYTES = 1000
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("operators", channel)

    with (
        caplog.at_level(logging.ERROR, logger="detection.retention"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        report = retention_run(dry_run=False)

    assert report.quota_exceeded
    assert [item.segment_id for item in report.erasures] == [safe.pk]
    held.refresh_from_db()
    assert held.status == Segment.Status.ANALYSED and Path(held.original.path).exists()
    run = RetentionRun.objects.get()
    assert run.quota_exceeded and run.storage_bytes > 1000
    alert = AuditEvent.objects.get(action="retention.quota_exceeded")
    assert alert.outcome == "failed" and alert.details["quota_bytes"] == 1000
    assert "over the quota" in caplog.text
    for _ in range(20):  # other runs may share the Redis; find ours
        message = async_to_sync(layer.receive)(channel)["message"]
        if message.get("retention_run") == run.pk:
            break
    assert message["type"] == "ops.alert" and message["alert"] == "storage.quota"
    async_to_sync(layer.group_discard)("operators", channel)


def test_beat_task_runs_retention(world: World):
    old = footage_segment(world.camera_a, hours_old=PAST_LEGAL_MINIMUM)
    assert retention_sweep.apply().get() == 1
    old.refresh_from_db()
    assert old.status == Segment.Status.PURGED
    assert RetentionRun.objects.get().trigger == RetentionRun.Trigger.SCHEDULE
