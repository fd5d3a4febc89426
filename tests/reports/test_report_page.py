"""The police report page: a player over the banded timeline, blurred footage, one download."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import World
from tests.support.storage import footage_segment

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def test_the_report_page_plays_blurred_copies_over_the_timeline_and_wraps_the_fingerprint(
    world: World,
) -> None:
    case = world.report_a.case
    segments = [footage_segment(case.camera, hours_old=1 + i / 1000) for i in range(3)]
    case.segments.add(*segments)
    client = Client()
    client.force_login(world.lee)
    page = client.get(reverse("report-detail", args=[world.report_a.pk]))
    assert page.status_code == 200
    text = page.text
    assert '<video id="player"' in text and 'id="timeline"' in text
    assert 'id="timeline-data"' in text
    # The player and the file list point at the working copy (faces pixelated) first; the
    # original is one click away, and the file view audits it.
    assert reverse("segment-working-copy", args=[segments[0].pk]) in text
    assert reverse("segment-file", args=[segments[0].pk, "original"]) in text
    assert "/preview" not in text
    # The files are folded away under one summary, not 200 links down the page.
    assert '<details id="footage-files">' in text
    assert 'class="fingerprint" id="fingerprint"' in text and "data-copy" in text


def test_a_follow_up_report_links_back_on_the_list_in_the_live_message_and_on_its_page(
    world: World,
) -> None:
    from detection.models import Case
    from reports.announce import report_payload
    from reports.services import police_report_send
    from tests import factories

    first = world.report_a
    follow_case = factories.CaseFactory(
        camera=first.case.camera, band="violent", peak_score=0.97, follows=first.case
    )
    follow_up = police_report_send(case=follow_case, reason="violent")
    follow_case.refresh_from_db()
    assert follow_case.span_end_reason == Case.SpanEnd.REPORTED  # frozen once reported
    payload = report_payload(follow_up)
    assert payload["follows_report"] == first.pk
    assert payload["sent_at_display"] and payload["site_name"] == first.case.camera.site.name
    client = Client()
    client.force_login(world.lee)
    listing = client.get(reverse("report-list")).text
    assert f'href="/reports/{first.pk}/">#{first.pk}</a>' in listing
    page = client.get(reverse("report-detail", args=[first.pk])).text
    assert f'<a href="/reports/{follow_up.pk}/">#{follow_up.pk}</a>' in page
    follow_page = client.get(reverse("report-detail", args=[follow_up.pk])).text
    assert f"Follow-up of case #{first.case.pk}" in follow_page
    assert "Frozen: reported to police" in follow_page
