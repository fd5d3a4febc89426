"""Issue #15's journeys in headless Chromium (Debian's), English and Korean where text is checked.

Live messages are built by the same payload functions the server broadcasts, and handed to the
page as alerts.js hands them on, so the rows and toasts seen are those a socket would give.
Screenshots go to settings.TEST_OUTPUT_DIR/screenshots (test output, not in git).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from cameras.models import Site
from detection.models import Case
from detection.payloads import case_payload
from reports.announce import report_payload
from reports.services import police_report_send
from tests import factories
from tests.abusewatch.test_browser_journeys import (  # noqa: F401 - the journeys' fixtures
    CHROMIUM,
    allow_orm_beside_playwright,
    open_as,
    send_live,
    snap,
)
from tests.abusewatch.test_browser_journeys import (
    browser as browser,
)
from tests.abusewatch.test_browser_journeys import (
    journey_world as journey_world,
)
from tests.conftest import World
from tests.support.browser import until

pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


@pytest.mark.parametrize(("lang", "title"), [("en", "Operators only"), ("ko", "운영자 전용")])
def test_a_non_operator_at_admin_gets_a_clear_403(
    browser, live_server, journey_world: World, lang: str, title: str
) -> None:
    for user in (journey_world.alice, journey_world.erin, journey_world.lee):
        page = open_as(browser, live_server, user, lang=lang)
        response = page.goto(f"{live_server.url}/admin/")
        assert response is not None and response.status == 403
        assert page.locator("#admin-forbidden h1").inner_text() == title
        assert "/admin/" in page.url  # no loop: one redirect to the sign-in path at most
    snap(page, f"admin-forbidden-{lang}")


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_an_admin_sees_a_new_case_live_in_the_sites_zone_and_opens_it(
    browser, live_server, journey_world: World, lang: str
) -> None:
    w = journey_world
    Site.objects.filter(pk=w.site_a.pk).update(timezone="Asia/Seoul")
    page = open_as(browser, live_server, w.alice, lang=lang)
    page.goto(f"{live_server.url}/sites/{w.site_a.pk}/")
    rendered = page.locator(f'tr[data-case="{w.uncertain_case_a.pk}"] td').nth(2).inner_text()
    assert rendered.endswith(" KST")
    made = factories.CaseFactory(
        camera=w.camera_a, band="uncertain", peak_score=0.61, started_at=timezone.now()
    )
    fresh = Case.objects.select_related("camera__site").get(pk=made.pk)
    send_live(page, {"type": "case.alert", "case": case_payload(fresh)})
    row = page.locator(f'tr[data-case="{fresh.pk}"]')
    row.wait_for()
    live_time = row.locator("td").nth(2).inner_text()
    # The live row reads exactly as a rendered row: the site's zone and its abbreviation.
    assert live_time.endswith(" KST") and len(live_time) == len(rendered)
    page.goto(f"{live_server.url}/cases/{fresh.pk}/")
    assert page.locator("h1").count() >= 1
    snap(page, f"admin-case-live-{lang}")
    assert not page.js_errors, page.js_errors


@pytest.mark.parametrize(
    ("lang", "follows", "reason"),
    [("en", "follows report", "Violent detection"), ("ko", "후속: 신고", "폭력 감지")],
)
def test_police_see_a_new_report_and_its_follow_up_live_row_and_toast(
    browser, live_server, journey_world: World, lang: str, follows: str, reason: str
) -> None:
    w = journey_world
    page = open_as(browser, live_server, w.lee, lang=lang)
    page.goto(f"{live_server.url}/reports/")
    first_case = w.report_a.case
    # Later activity of the reported camera: a follow-up case, linked, reported in its turn.
    follow_case = factories.CaseFactory(
        camera=first_case.camera,
        band="violent",
        peak_score=0.96,
        follows=first_case,
        started_at=first_case.ended_at + dt.timedelta(seconds=4),
        ended_at=first_case.ended_at + dt.timedelta(seconds=8),
    )
    follow_up = police_report_send(case=follow_case, reason="violent")
    send_live(page, {"type": "report.status", "report": report_payload(follow_up)})
    row = page.locator(f'tr[data-report="{follow_up.pk}"]')
    row.wait_for()
    assert follows in row.inner_text() and f"#{w.report_a.pk}" in row.inner_text()
    assert reason in row.inner_text()  # in the reader's language, not the broadcaster's
    assert page.locator(f'[data-toast-report="{follow_up.pk}"]').is_visible()
    snap(page, f"police-list-live-{lang}")
    # The same message again changes nothing: one row per report.
    send_live(page, {"type": "report.status", "report": report_payload(follow_up)})
    assert page.locator(f'tr[data-report="{follow_up.pk}"]').count() == 1
    assert not page.js_errors, page.js_errors


def test_police_open_the_report_play_it_download_the_package_and_verify_it(
    browser, live_server, journey_world: World, tmp_path: Path, settings
) -> None:
    settings.WORKING_COPIES_AHEAD = True  # the package carries the blurred copies
    w = journey_world
    # Made ahead in production (a task when the case opens and when it is reported).
    from reports.redaction import case_working_copies_make

    case_working_copies_make(w.report_a.case)
    page = open_as(browser, live_server, w.lee)
    page.goto(f"{live_server.url}/reports/{w.report_a.pk}/")
    until(lambda: page.evaluate("document.getElementById('player').readyState >= 1"), seconds=120)
    assert "/working-copy.mp4" in page.eval_on_selector("#player", "v => v.currentSrc")
    assert page.locator("#timeline").is_visible()
    fingerprint = page.locator("#fingerprint")
    box = fingerprint.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 1280  # wrapped, not overflowing
    page.evaluate("document.getElementById('player').play()")
    until(lambda: page.evaluate("document.getElementById('player').currentTime > 0"), seconds=30)
    snap(page, "police-report-player-en")
    page.set_default_timeout(60_000)
    page.locator("#build-package").click()
    with page.expect_download(timeout=180_000) as download_info:
        page.locator("a.download").first.click()
    path = tmp_path / "package.zip"
    download_info.value.save_as(path)
    call_command("verify_evidence", str(path))
    import zipfile

    with zipfile.ZipFile(path) as archive:
        assert any(n.startswith("working_copies/") for n in archive.namelist())
    assert not page.js_errors, page.js_errors
