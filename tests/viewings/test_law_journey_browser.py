"""The centre admin's legal journey in headless Chromium, in Korean and English: retention
refused below the law then raised, a parent's viewing request recorded with a doctor's note,
answered, viewed on site, a mosaicked copy made, and the access log read and printed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.abusewatch.test_browser_journeys import (  # noqa: F401  (fixtures)
    allow_orm_beside_playwright,
    browser,
    open_as,
    snap,
)
from tests.conftest import World
from tests.support.storage import footage_segment
from tests.viewings.test_viewing_requests import face_clip
from viewings.models import TakeoutCopy, ViewingRequest

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]
SEOUL = dt.timezone(dt.timedelta(hours=9))


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_centre_admin_legal_journey(
    transactional_db,
    world: World,
    media_root,
    browser,  # noqa: F811  (the fixture imported above)
    live_server,
    lang,
):
    segment = footage_segment(world.camera_a, hours_old=3, original=face_clip())
    page = open_as(browser, live_server, world.alice, lang=lang)
    base = live_server.url

    page.goto(f"{base}/sites/{world.site_a.pk}/")
    assert page.locator("#storage-plan").is_visible()
    assert "영유아보육법 제15조의4" in page.locator("#site-law").inner_text()
    snap(page, f"law-site-{lang}")

    page.click("#site-law a[href$='/retention/']")
    page.fill("input[name=retention_days]", "30")
    page.click("#retention-form button[type=submit]")
    assert "최소 60일" in page.content() and "at least 60 days" in page.content()
    snap(page, f"law-retention-refused-{lang}")
    page.fill("input[name=retention_days]", "90")
    page.click("#retention-form button[type=submit]")
    page.wait_for_url(f"**/sites/{world.site_a.pk}/")

    page.click("#viewings-link")
    page.select_option("select[name=camera]", str(world.camera_a.pk))
    page.fill("input[name=group_or_room]", "해바라기반")
    page.fill("input[name=child_label]", "민준")
    page.fill("input[name=guardian_name]", "김보호")
    page.fill("input[name=guardian_contact]", "010-1234-5678")
    start = (segment.started_at - dt.timedelta(minutes=5)).astimezone(SEOUL)
    end = (segment.ended_at + dt.timedelta(minutes=5)).astimezone(SEOUL)
    page.fill("input[name=starts_at]", start.strftime("%Y-%m-%dT%H:%M"))
    page.fill("input[name=ends_at]", end.strftime("%Y-%m-%dT%H:%M"))
    page.fill("textarea[name=reason]", "팔에 멍 / a bruise on the arm")
    page.set_input_files(
        "input[name=attachment]",
        {"name": "소견서.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 note"},
    )
    snap(page, f"law-viewing-form-{lang}")
    page.click("#viewing-form button[type=submit]")
    page.wait_for_url("**/viewings/*/")
    request = ViewingRequest.objects.get()
    assert request.attachments.count() == 1
    assert page.locator("#reply-due").inner_text().startswith(request.reply_due.isoformat())

    answer = (dt.datetime.now(SEOUL) + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    page.fill("#schedule-form input[name=appointment_at]", answer)
    page.fill("#schedule-form input[name=appointment_place]", "원장실 / director's office")
    page.click("#schedule-form button[type=submit]")
    page.click("#onsite-form button[type=submit]")
    page.fill("#takeout-form input[name=recipient]", "김보호")
    page.click("#takeout-form button[type=submit]")
    page.wait_for_selector("#copies li")
    assert TakeoutCopy.objects.filter(request=request).count() == 1
    snap(page, f"law-viewing-detail-{lang}")

    page.goto(f"{base}/viewings/site/{world.site_a.pk}/access-log/")
    assert page.locator("#access-log tbody tr[data-kind=view]").count() >= 1
    assert page.locator("#access-log tbody tr[data-kind=copy]").count() == 1
    snap(page, f"law-access-log-{lang}")
    page.goto(f"{base}/viewings/site/{world.site_a.pk}/access-log/?format=print")
    snap(page, f"law-access-log-print-{lang}")

    page.goto(f"{base}/sites/cameras/{world.camera_a.pk}/")
    assert "음성은 녹음하지 않습니다" in page.locator("#no-audio").inner_text()
    assert page.js_errors == []
