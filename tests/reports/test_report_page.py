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
