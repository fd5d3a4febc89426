"""Retention by law: a site keeps footage at least its jurisdiction's minimum (Korea: 60 days),
longer by choice, never shorter; held footage survives retention and the storage quota."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from audit.models import AuditEvent
from cameras.jurisdictions import KOREA
from cameras.models import Site
from detection.models import FootageHold, Segment
from detection.retention import retention_run
from tests.conftest import World, api_as
from tests.support.footage import client_as
from tests.support.storage import footage_segment

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

PAST_LEGAL_MINIMUM = KOREA.min_retention_hours + 24


def test_new_sites_keep_the_korean_legal_minimum(world: World):
    assert world.site_a.jurisdiction == "KR"
    assert world.site_a.retention_hours == 60 * 24


def test_form_refuses_retention_below_the_minimum_in_korean_and_english(world: World):
    response = client_as(world.alice).post(
        f"/sites/{world.site_a.pk}/retention/", {"retention_days": "30"}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "최소 60일" in page and "at least 60 days" in page
    assert "영유아보육법 제15조의4" in page
    world.site_a.refresh_from_db()
    assert world.site_a.retention_hours == 60 * 24
    denied = AuditEvent.objects.get(action="site.retention_change")
    assert denied.outcome == "denied" and denied.details["to"] == 30 * 24


def test_form_accepts_a_longer_retention(world: World):
    response = client_as(world.alice).post(
        f"/sites/{world.site_a.pk}/retention/", {"retention_days": "90"}
    )
    assert response.status_code == 302
    world.site_a.refresh_from_db()
    assert world.site_a.retention_hours == 90 * 24


def test_api_refuses_retention_below_the_minimum(world: World):
    client = api_as(world.alice)
    response = client.post(
        f"/api/sites/{world.site_a.pk}/retention/", {"retention_hours": 72}, format="json"
    )
    assert response.status_code == 400
    assert "60" in str(response.json()["retention_hours"])
    assert "제15조의4" in str(response.json()["retention_hours"])
    ok = client.post(
        f"/api/sites/{world.site_a.pk}/retention/", {"retention_hours": 1500}, format="json"
    )
    assert ok.status_code == 200 and ok.json()["retention_hours"] == 1500


def test_admin_refuses_retention_below_the_minimum(world: World):
    site = world.site_a
    form = {
        "name": site.name,
        "address": site.address,
        "phone": site.phone,
        "director": site.director,
        "region": site.region,
        "police_station": site.police_station_id,
        "timezone": site.timezone,
        "jurisdiction": "KR",
        "retention_hours": "72",
        "admins": [world.alice.pk],
    }
    response = client_as(world.olga).post(f"/admin/cameras/site/{site.pk}/change/", form)
    assert response.status_code == 200  # the form again, with the reason
    assert "최소 60일" in response.content.decode()
    site.refresh_from_db()
    assert site.retention_hours == 60 * 24
    response = client_as(world.olga).post(
        f"/admin/cameras/site/{site.pk}/change/", {**form, "retention_hours": "2000"}
    )
    assert response.status_code == 302
    site.refresh_from_db()
    assert site.retention_hours == 2000


def test_centre_admin_of_another_site_cannot_change_retention(world: World):
    assert (
        client_as(world.bob)
        .post(f"/sites/{world.site_a.pk}/retention/", {"retention_days": "90"})
        .status_code
        == 404
    )
    response = api_as(world.bob).post(
        f"/api/sites/{world.site_a.pk}/retention/", {"retention_hours": 2000}, format="json"
    )
    assert response.status_code == 404
    world.site_a.refresh_from_db()
    assert world.site_a.retention_hours == 60 * 24


def test_viewing_request_hold_and_case_in_the_erasure_window_erase_neither(world: World):
    requested = footage_segment(world.camera_a, hours_old=PAST_LEGAL_MINIMUM)
    of_a_case = footage_segment(world.camera_a, hours_old=PAST_LEGAL_MINIMUM + 1)
    world.uncertain_case_a.segments.add(of_a_case)
    site_wide = footage_segment(world.camera_a, hours_old=PAST_LEGAL_MINIMUM + 5)
    ordinary = footage_segment(world.camera_a, hours_old=PAST_LEGAL_MINIMUM + 3)
    FootageHold.objects.create(
        site=world.site_a,
        camera=world.camera_a,
        starts_at=requested.started_at,
        ends_at=requested.ended_at,
        kind=FootageHold.Kind.VIEWING_REQUEST,
    )
    FootageHold.objects.create(
        site=world.site_a,
        camera=None,
        starts_at=site_wide.started_at,
        ends_at=site_wide.ended_at,
        kind=FootageHold.Kind.LEGAL,
    )

    report = retention_run(dry_run=False)

    assert [item.segment_id for item in report.erasures] == [ordinary.pk]
    for segment in (requested, of_a_case, site_wide):
        segment.refresh_from_db()
        assert segment.status == Segment.Status.ANALYSED


def test_released_hold_lets_retention_erase(world: World):
    segment = footage_segment(world.camera_a, hours_old=PAST_LEGAL_MINIMUM)
    FootageHold.objects.create(
        site=world.site_a,
        starts_at=segment.started_at,
        ends_at=segment.ended_at,
        kind=FootageHold.Kind.LEGAL,
        released_at=segment.ended_at,
    )
    assert [item.segment_id for item in retention_run(dry_run=False).erasures] == [segment.pk]


def test_quota_never_erases_footage_inside_the_legal_minimum_and_pauses_analysis(
    world: World, settings
):
    young = footage_segment(world.camera_a, hours_old=24 * 10, size=20_000)
    settings.MEDIA_QUOTA_BYTES = 1000

    report = retention_run(dry_run=False)

    assert report.erasures == [] and report.quota_exceeded
    young.refresh_from_db()
    assert young.status == Segment.Status.ANALYSED
    site = Site.objects.get(pk=world.site_a.pk)
    assert site.analysis_paused_at is not None
    assert "legal minimum" in site.analysis_paused_reason
    assert AuditEvent.objects.filter(action="site.analysis_pause").exists()
    page = client_as(world.alice).get(f"/sites/{site.pk}/").content.decode()
    assert 'id="analysis-paused"' in page and "새 영상 분석 중지" in page
    camera_page = client_as(world.alice).get(f"/sites/cameras/{world.camera_a.pk}/")
    assert 'id="analysis-paused"' in camera_page.content.decode()
    # Site B has no footage on the disk: its analysis goes on.
    assert Site.objects.get(pk=world.site_b.pk).analysis_paused_at is None

    settings.MEDIA_QUOTA_BYTES = 0
    retention_run(dry_run=False)
    assert Site.objects.get(pk=world.site_a.pk).analysis_paused_at is None


def test_data_migration_raises_short_retention_and_reverses(world: World):
    migration = importlib.import_module(
        "cameras.migrations.0004_sites_keep_footage_the_legal_minimum"
    )
    Site.objects.filter(pk=world.site_a.pk).update(retention_hours=72)
    Site.objects.filter(pk=world.site_b.pk).update(retention_hours=24 * 100)
    migration.raise_to_legal_minimum(apps, None)
    assert Site.objects.get(pk=world.site_a.pk).retention_hours == 60 * 24
    assert Site.objects.get(pk=world.site_b.pk).retention_hours == 24 * 100
    migration.back_to_old_default(apps, None)
    assert Site.objects.get(pk=world.site_a.pk).retention_hours == 72
    assert Site.objects.get(pk=world.site_b.pk).retention_hours == 24 * 100
