"""What follows a case after it opens: its alert groups, its post-roll footage, API views."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from access.policy import station_group
from audit.models import AuditEvent
from cameras.models import Site
from detection.announce import case_groups
from detection.models import Case, Segment
from detection.pipeline import segment_create, segment_mark_failed
from detection.selectors import cases_visible_to
from reports.services import police_report_send
from tests import factories
from tests.conftest import World, api_as

pytestmark = pytest.mark.django_db


def test_a_reported_case_stays_with_the_station_it_was_reported_to(world: World) -> None:
    Site.objects.filter(pk=world.site_a.pk).update(police_station=world.station_b)
    reported = Case.objects.select_related("camera__site").get(pk=world.violent_case_a.pk)
    groups = case_groups(reported)
    assert station_group(world.station_a.pk) in groups
    assert station_group(world.station_b.pk) not in groups
    # A violent case with no report yet is no station's: its liaisons cannot open it, so they
    # do not hear of it either (issue #13: push and pull once disagreed here). They hear of it
    # once reports has sent it to the site's station as it is now.
    made = factories.CaseFactory(camera=world.camera_a, band="violent", peak_score=0.99)
    unreported = Case.objects.select_related("camera__site").get(pk=made.pk)
    assert station_group(world.station_b.pk) not in case_groups(unreported)
    assert not cases_visible_to(world.pat).filter(pk=made.pk).exists()
    report = police_report_send(case=unreported, reason="violent")
    assert report.station == world.station_b
    assert station_group(world.station_b.pk) in case_groups(unreported)
    assert cases_visible_to(world.pat).filter(pk=made.pk).exists()


@pytest.fixture
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return tmp_path


def _window(camera_id: int, start: dt.datetime, folder: Path, **kwargs) -> Segment:
    original = folder / f"{start.timestamp()}.mp4"
    original.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"o" * 100)
    return segment_create(
        camera_id=camera_id,
        started_at=start,
        ended_at=start + dt.timedelta(seconds=2),
        source=Segment.Source.INGEST,
        original=original,
        **kwargs,
    )


def test_post_roll_windows_triage_never_sees_stay_with_the_case(
    world: World, media: Path, settings, django_capture_on_commit_callbacks
) -> None:
    settings.MOTION_GATE_THRESHOLD = 0.01
    case = world.uncertain_case_b
    # A still window just after the case (the motion gate skips it) ...
    still = _window(case.camera_id, case.ended_at + dt.timedelta(seconds=1), media, motion_score=0)
    # ... one whose analysis failed ...
    with django_capture_on_commit_callbacks(execute=False):
        failed = _window(case.camera_id, case.ended_at, media, motion_score=0.5)
    segment_mark_failed(segment_id=failed.pk, reason="decoder gave up")
    # ... and a still window well after the post-roll.
    later = _window(case.camera_id, case.ended_at + dt.timedelta(seconds=30), media, motion_score=0)
    held = set(case.segments.values_list("pk", flat=True))
    assert {still.pk, failed.pk} <= held
    assert later.pk not in held
    # Another camera's case keeps none of them.
    assert not world.uncertain_case_a.segments.filter(pk__in=[still.pk, failed.pk]).exists()


def test_case_detail_over_the_api_is_audited_refusals_included(world: World) -> None:
    case = world.violent_case_a
    assert api_as(world.lee).get(f"/api/cases/{case.pk}/").status_code == 200
    assert api_as(world.pat).get(f"/api/cases/{case.pk}/").status_code == 404
    views = AuditEvent.objects.filter(action="case.view", details__via="api")
    assert views.get(actor=world.lee, outcome="success").object_id == str(case.pk)
    assert views.get(actor=world.pat, outcome="denied").details["case"] == str(case.pk)


def test_a_camera_gone_quiet_has_its_case_ended_by_the_sweep(world: World, settings) -> None:
    """No next window ever comes from a cut camera: the periodic sweep ends its case."""
    from django.utils import timezone

    from detection.services import cases_end_quiet_spans

    settings.CASE_MERGE_GAP_SECONDS = 10
    settings.CASE_QUIET_SWEEP_SLACK_SECONDS = 120
    now = timezone.now()
    quiet = factories.CaseFactory(
        camera=world.camera_a,
        started_at=now - dt.timedelta(minutes=10),
        ended_at=now - dt.timedelta(minutes=9),
    )
    recent = factories.CaseFactory(
        camera=world.camera_b,
        started_at=now - dt.timedelta(seconds=60),
        ended_at=now - dt.timedelta(seconds=30),  # within gap + slack: windows may still come
    )
    assert cases_end_quiet_spans(now=now) >= 1
    quiet.refresh_from_db()
    recent.refresh_from_db()
    assert quiet.span_end_reason == Case.SpanEnd.QUIET
    assert quiet.span_ended_at == quiet.ended_at + dt.timedelta(seconds=10)
    assert recent.span_ended_at is None
    assert cases_end_quiet_spans(now=now) == 0  # once only
