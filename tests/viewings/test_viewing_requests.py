"""Parents' viewing requests: footage held at once, a 10-day reply deadline in the site's
calendar, on-site viewing audited, a mosaicked and watermarked take-out copy hashed into the
audit chain, closing, one-step police report; nothing of it visible to another centre."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import av
import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_verify_chain
from detection.models import FootageHold, Segment
from detection.retention import retention_run
from reports.models import PoliceReport
from tests.conftest import World
from tests.support.faces import face_clip_bytes, first_frame
from tests.support.footage import client_as
from tests.support.storage import footage_segment
from viewings import services
from viewings.deadlines import is_overdue, reply_due_date
from viewings.models import ViewingRequest

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

SEOUL = "Asia/Seoul"
# Where scikit-image's astronaut has her face (rows, columns) in the 512x512 photograph.
FACE = (slice(80, 150), slice(185, 255))
FACE_BOX = (180 / 512, 70 / 512, 90 / 512, 100 / 512)
ELSEWHERE_BOX = (0.0, 0.6, 0.2, 0.2)


def test_deadline_turns_overdue_on_day_11_in_the_sites_calendar():
    # 23:30 UTC on the 1st is 08:30 on the 2nd in Seoul: the request is the 2nd's.
    received = dt.datetime(2026, 11, 1, 23, 30, tzinfo=dt.UTC)
    due = reply_due_date(received_at=received, zone=SEOUL, days=10)
    assert due == dt.date(2026, 11, 12)
    last_minute_of_day_10 = dt.datetime(
        2026, 11, 12, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=9))
    )
    first_minute_of_day_11 = dt.datetime(
        2026, 11, 13, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=9))
    )
    assert not is_overdue(due=due, now=last_minute_of_day_10, zone=SEOUL)
    assert is_overdue(due=due, now=first_minute_of_day_11, zone=SEOUL)
    # In UTC that first Seoul minute is still the 12th: a server-zone count would miss it.
    assert first_minute_of_day_11.astimezone(dt.UTC).date() == dt.date(2026, 11, 12)


def face_clip() -> bytes:
    return face_clip_bytes()


def new_request(world: World, segment: Segment, **overrides) -> ViewingRequest:
    fields = {
        "site": world.site_a,
        "camera": world.camera_a,
        "group_or_room": "해바라기반 / Sunflower room",
        "child_label": "민준",
        "guardian_name": "김보호",
        "guardian_contact": "010-0000-0000",
        "starts_at": segment.started_at - dt.timedelta(minutes=1),
        "ends_at": segment.ended_at + dt.timedelta(minutes=1),
        "reason": "멍 자국 / a bruise",
        "actor": world.alice,
    }
    return services.viewing_request_create(**{**fields, **overrides})


@pytest.fixture
def requested(world: World) -> tuple[ViewingRequest, Segment]:
    segment = footage_segment(world.camera_a, hours_old=2, original=face_clip())
    return new_request(world, segment), segment


def test_a_request_holds_its_footage_at_once_even_past_retention(world: World):
    segment = footage_segment(world.camera_a, hours_old=24 * 70)
    request = new_request(world, segment)
    assert request.hold.kind == FootageHold.Kind.VIEWING_REQUEST
    assert request.hold.held_by == f"viewings.ViewingRequest:{request.pk}"
    assert request.reply_due == (
        timezone.now().astimezone(dt.timezone(dt.timedelta(hours=9))).date() + dt.timedelta(days=10)
    )
    services.viewing_close(request=request, outcome="no_concern", note="", actor=world.alice)
    assert retention_run(dry_run=False).erasures == []
    segment.refresh_from_db()
    assert segment.status == Segment.Status.ANALYSED


def test_request_pages_show_overdue_on_day_11(world: World):
    segment = footage_segment(world.camera_a, hours_old=24 * 12)
    eleven_days_ago = timezone.now() - dt.timedelta(days=11, hours=1)
    overdue = new_request(world, segment, now=eleven_days_ago)
    fresh = new_request(world, segment)
    page = client_as(world.alice).get(f"/viewings/site/{world.site_a.pk}/").content.decode()
    overdue_row = page.split(f'data-viewing="{overdue.pk}"')[1].split("</tr>")[0]
    fresh_row = page.split(f'data-viewing="{fresh.pk}"')[1].split("</tr>")[0]
    assert 'data-field="overdue"' in overdue_row and "기한 경과" in overdue_row
    assert 'data-field="overdue"' not in fresh_row
    assert "영유아보육법 제15조의5" in page


def test_bad_requests_are_refused_with_reasons(world: World):
    segment = footage_segment(world.camera_a, hours_old=2)
    with pytest.raises(ValidationError, match="Not a camera of this site"):
        new_request(world, segment, camera=world.camera_b)
    with pytest.raises(ValidationError, match="end must follow"):
        new_request(world, segment, ends_at=segment.started_at - dt.timedelta(hours=1))
    with pytest.raises(ValidationError, match="24 hours"):
        new_request(world, segment, starts_at=segment.started_at - dt.timedelta(days=2))
    assert not ViewingRequest.objects.exists() and not FootageHold.objects.exists()


def test_the_form_records_a_request_with_a_doctors_note(world: World):
    segment = footage_segment(world.camera_a, hours_old=2)
    local = dt.timezone(dt.timedelta(hours=9))
    response = client_as(world.alice).post(
        f"/viewings/site/{world.site_a.pk}/",
        {
            "camera": world.camera_a.pk,
            "group_or_room": "Sunflower",
            "child_label": "Minjun",
            "guardian_name": "Kim",
            "guardian_contact": "010-0000-0000",
            "starts_at": (segment.started_at - dt.timedelta(minutes=5))
            .astimezone(local)
            .strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (segment.ended_at + dt.timedelta(minutes=5))
            .astimezone(local)
            .strftime("%Y-%m-%dT%H:%M"),
            "reason": "bruise",
            "attachment": SimpleUploadedFile("../../소견서\x07.pdf", b"%PDF-1.4 doctor's note"),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    request = ViewingRequest.objects.get()
    # The times typed were Seoul's.
    assert request.starts_at <= segment.started_at < request.ends_at
    attachment = request.attachments.get()
    assert attachment.name == "소견서.pdf" and attachment.content_type == "application/pdf"
    stored_name = str(attachment.file.name)
    assert ".." not in stored_name and "소견서" not in stored_name


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("note.pdf", b"MZ\x90\x00 an executable", "Only PDF, JPEG and PNG"),
        ("note.pdf", b"", "empty"),
        ("huge.pdf", b"%PDF-" + b"0" * 2048, "at most"),
    ],
    ids=["executable named .pdf", "empty", "too large"],
)
def test_hostile_attachments_are_refused(world: World, settings, name, content, why):
    settings.VIEWING_ATTACHMENT_MAX_BYTES = 1024
    segment = footage_segment(world.camera_a, hours_old=2)
    request = new_request(world, segment)
    with pytest.raises(ValidationError, match=why):
        services.viewing_attachment_add(
            request=request, upload=SimpleUploadedFile(name, content), actor=world.alice
        )
    assert not request.attachments.exists()


def test_onsite_viewing_is_audited_and_listed_in_the_access_log(world: World, requested):
    request, segment = requested
    response = client_as(world.alice).post(f"/viewings/{request.pk}/onsite/")
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="footage.view")
    assert event.object_id == str(segment.pk) and event.details["on_site"] is True
    log = (
        client_as(world.alice).get(f"/viewings/site/{world.site_a.pk}/access-log/").content.decode()
    )
    assert f'data-event="{event.pk}"' in log and "보호자 열람 요청" in log


def test_takeout_copy_mosaics_everyone_but_the_marked_child(world: World, requested):
    request, segment = requested
    original = first_frame(Path(segment.original.path))

    kept = services.viewing_takeout_create(
        request=request, child_box=FACE_BOX, recipient="김보호", actor=world.alice
    )
    hidden = services.viewing_takeout_create(
        request=request, child_box=ELSEWHERE_BOX, recipient="김보호", actor=world.alice
    )

    kept_frame = first_frame(Path(kept.file.path))
    hidden_frame = first_frame(Path(hidden.file.path))
    # The marked child (here: the face) is as in the original; the same face in a copy where
    # another child was marked is pixelated.
    assert np.abs(kept_frame[FACE] - original[FACE]).mean() < 6
    assert np.abs(hidden_frame[FACE] - original[FACE]).mean() > 12
    # Outside the marked box the picture is mosaicked in both.
    elsewhere = (slice(300, 380), slice(380, 480))
    assert np.abs(kept_frame[elsewhere] - original[elsewhere]).mean() > 5
    # The watermark: visible (a dark band with light text at the bottom) and in the metadata.
    band = kept_frame[-18:-4, :300]
    assert band.min() < 40 and band.max() > 200
    with av.open(kept.file.path) as container:
        comment = container.metadata.get("comment", "")
        assert not container.streams.audio
    assert f"#{request.pk}" in comment and "김보호" in comment and "Asia/Seoul" in comment
    # The hash is the file's, and it is in the audit chain, which still verifies.
    assert kept.sha256 == hashlib.sha256(Path(kept.file.path).read_bytes()).hexdigest()
    event = AuditEvent.objects.get(action="footage.copy", object_id=str(kept.pk))
    assert event.details["sha256"] == kept.sha256 and event.details["segments"] == [segment.pk]
    assert audit_verify_chain() is None


def test_download_of_a_copy_is_logged_and_scoped(world: World, requested):
    request, _segment = requested
    copy = services.viewing_takeout_create(
        request=request, child_box=FACE_BOX, recipient="Kim", actor=world.alice
    )
    assert client_as(world.bob).get(f"/viewings/copies/{copy.pk}/").status_code == 404
    response = client_as(world.alice).get(f"/viewings/copies/{copy.pk}/")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert hashlib.sha256(body).hexdigest() == copy.sha256
    csv = (
        client_as(world.alice)
        .get(f"/viewings/site/{world.site_a.pk}/access-log/?format=csv")
        .content.decode()
    )
    assert "다운로드 / download" in csv and "복사 / copy" in csv and "alice" in csv


def test_close_with_outcome_and_one_step_police_report(world: World, requested):
    request, segment = requested
    response = client_as(world.alice).post(f"/viewings/{request.pk}/report/")
    assert response.status_code == 302
    request.refresh_from_db()
    report = request.police_report
    assert report is not None and report.reason == PoliceReport.Reason.VIEWING
    assert report.station == world.site_a.police_station
    assert list(report.case.segments.all()) == [segment]
    assert report.case.status == "reported"
    # The police liaison of the station sees it; the other station's does not.
    assert client_as(world.lee).get(f"/reports/{report.pk}/").status_code == 200
    assert client_as(world.pat).get(f"/reports/{report.pk}/").status_code == 404
    client_as(world.alice).post(
        f"/viewings/{request.pk}/close/", {"outcome": "reported", "note": "112"}
    )
    request.refresh_from_db()
    assert request.status == "closed" and request.outcome == "reported"
    assert request.hold.released_at is None


def test_centre_admin_of_another_site_sees_none_of_it(world: World, requested):
    request, _segment = requested
    copy = services.viewing_takeout_create(
        request=request, child_box=FACE_BOX, recipient="Kim", actor=world.alice
    )
    bob = client_as(world.bob)
    for url in (
        f"/viewings/site/{world.site_a.pk}/",
        f"/viewings/site/{world.site_a.pk}/access-log/",
        f"/viewings/site/{world.site_a.pk}/access-log/?format=csv",
        f"/viewings/{request.pk}/",
        f"/viewings/copies/{copy.pk}/",
    ):
        assert bob.get(url).status_code == 404, url
    for step in ("onsite", "close", "report", "takeout", "schedule"):
        assert bob.post(f"/viewings/{request.pk}/{step}/").status_code == 404
    request.refresh_from_db()
    assert request.status == "received" and request.police_report is None
    # Bob's own site's list holds nothing of site A's.
    page = bob.get(f"/viewings/site/{world.site_b.pk}/").content.decode()
    assert f'data-viewing="{request.pk}"' not in page
    # Police and experts are not centre admins: no viewing pages for them either.
    for user in (world.lee, world.erin, world.charlie):
        assert client_as(user).get(f"/viewings/{request.pk}/").status_code == 404


def test_reminders_once_a_day_near_and_past_the_deadline(world: World):
    segment = footage_segment(world.camera_a, hours_old=24 * 12)
    near = new_request(world, segment, now=timezone.now() - dt.timedelta(days=8))
    new_request(world, segment)  # ten days left: no reminder yet
    assert services.viewing_remind() == [near.pk]
    assert services.viewing_remind() == []  # once a day
    assert AuditEvent.objects.filter(action="viewing_request.remind").count() == 1
