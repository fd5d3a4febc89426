"""Storage planning: bytes per camera per day, days kept, disk for the legal period, days until
the quota, and an operator warning well before it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from detection.models import RetentionRun, Segment
from detection.storage import storage_plan, storage_warn_operators
from tests import factories
from tests.conftest import World
from tests.support.footage import client_as

pytestmark = pytest.mark.django_db

MB = 1_000_000


def record(camera, *, hours_ago: float, size: int, status: str = Segment.Status.ANALYSED):
    start = timezone.now() - dt.timedelta(hours=hours_ago)
    return factories.SegmentFactory(
        camera=camera,
        started_at=start,
        ended_at=start + dt.timedelta(seconds=2),
        original_size=size,
        status=status,
    )


@pytest.fixture
def two_days(world: World) -> None:
    # Camera A: 48 windows over the last two days, 10 MB each = 240 MB a day.
    for hour in range(48):
        record(world.camera_a, hours_ago=hour + 0.5, size=10 * MB)
    # Erased footage is not on the disk and is not counted.
    record(world.camera_a, hours_ago=30, size=999 * MB, status=Segment.Status.PURGED)
    RetentionRun.objects.create(
        trigger="schedule", started_at=timezone.now(), storage_bytes=480 * MB
    )


def test_bytes_per_day_days_kept_and_disk_for_the_legal_period(world: World, two_days):
    plan = storage_plan(sites=[world.site_a])
    [site] = plan.sites
    camera = next(c for c in site.cameras if c.camera_id == world.camera_a.pk)
    assert camera.bytes_per_day == pytest.approx(240 * MB, rel=0.03)
    assert camera.days_kept == pytest.approx(2.0, abs=0.05)
    assert site.legal_needed_bytes == pytest.approx(60 * 240 * MB, rel=0.03)
    assert site.needed_bytes == site.legal_needed_bytes  # keeps exactly the legal minimum


def test_days_until_full_and_the_operator_warning(world: World, two_days, settings):
    settings.MEDIA_QUOTA_BYTES = 480 * MB + 5 * 240 * MB  # five more days of footage
    settings.STORAGE_WARNING_DAYS = 14
    plan = storage_plan()
    assert plan.days_until_full == pytest.approx(5.0, rel=0.05)
    assert not plan.legal_minimum_fits and plan.warning
    assert storage_warn_operators() is True
    assert storage_warn_operators() is False  # once a day
    event = AuditEvent.objects.get(action="storage.warning")
    assert event.details["quota_bytes"] == settings.MEDIA_QUOTA_BYTES

    page = client_as(world.olga).get("/ops/").content.decode()
    assert 'id="storage-warning"' in page
    shown = float(page.split('id="days-until-full">')[1].split("<")[0])
    assert shown == pytest.approx(5.0, abs=0.2)


def test_a_quota_that_holds_the_legal_period_never_warns(world: World, two_days, settings):
    settings.MEDIA_QUOTA_BYTES = 100 * 240 * MB
    plan = storage_plan()
    assert plan.days_until_full is None and plan.legal_minimum_fits and not plan.warning
    assert storage_warn_operators() is False


def test_site_page_shows_its_own_cameras_only(world: World, two_days):
    page = client_as(world.alice).get(f"/sites/{world.site_a.pk}/").content.decode()
    assert 'id="storage-plan"' in page and f'data-storage-camera="{world.camera_a.pk}"' in page
    assert f'data-storage-site="{world.site_b.pk}"' not in page
    other = client_as(world.bob).get(f"/sites/{world.site_b.pk}/").content.decode()
    assert f'data-storage-camera="{world.camera_a.pk}"' not in other
