"""One journey per role in headless Chromium against a live server.

Screenshots go to settings.TEST_OUTPUT_DIR/screenshots: each key page at a laptop (1280x800)
and a tablet (820x1180) viewport, in English and Korean.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from audit.models import AuditEvent
from cameras.models import Camera
from detection.models import Case
from reports.models import PoliceReport
from tests.conftest import World
from tests.support.browser import until
from tests.support.footage import attach_footage, shift_case

playwright_sync = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]
LAPTOP = {"width": 1280, "height": 800}
TABLET = {"width": 820, "height": 1180}


@pytest.fixture(scope="module", autouse=True)
def allow_orm_beside_playwright() -> Iterator[None]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests (and
    # pytest-django's flush between them) make are still plain synchronous code. Module scope:
    # it must outlive every test's database teardown here, and end with this module.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def journey_world(transactional_db: None, world: World) -> World:
    attach_footage(world.uncertain_case_a)
    shift_case(world.violent_case_a, hours=-1)
    attach_footage(world.violent_case_a, scores=(0.91, 0.97))
    return world


def shots_dir() -> Path:
    # TEST_OUTPUT_DIR exists in the test settings only, which the type checker does not read.
    path = Path(settings.TEST_OUTPUT_DIR) / "screenshots"  # type: ignore[misc]
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_as(browser, live_server, user, *, lang: str = "en", viewport=LAPTOP):
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport=viewport, accept_downloads=True, locale=lang)
    host = live_server.url.split("//")[1].split(":")[0]
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "domain": host,
                "path": "/",
            },
            {"name": settings.LANGUAGE_COOKIE_NAME, "value": lang, "domain": host, "path": "/"},
        ]
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    return page


def snap(page, name: str) -> None:
    """Screenshot the page at both viewports."""
    for label, size in (("laptop", LAPTOP), ("tablet", TABLET)):
        page.set_viewport_size(size)
        page.screenshot(path=str(shots_dir() / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(LAPTOP)


def send_live(page, message: dict[str, object]) -> None:
    page.evaluate(
        "m => document.dispatchEvent(new CustomEvent('abusewatch:message', {detail: m}))", message
    )


def test_expert_claims_labels_and_escalates(
    browser, live_server, journey_world: World, commit_and_react
) -> None:
    w = journey_world
    case = w.uncertain_case_a
    page = open_as(browser, live_server, w.erin)
    page.goto(f"{live_server.url}/reviews/")
    row = page.locator(f'tr[data-case="{case.pk}"]')
    assert row.is_visible()
    # A status change from another expert arrives live and updates the row in place.
    other = w.uncertain_case_b
    send_live(page, {"type": "case.status", "case": {"id": other.pk, "status": "under_review"}})
    assert (
        page.locator(f'tr[data-case="{other.pk}"] [data-field="status"]').inner_text()
        == "Under review"
    )
    snap(page, "expert-queue-en")
    korean = open_as(browser, live_server, w.sam, lang="ko")
    korean.goto(f"{live_server.url}/reviews/")
    assert "검토 대기열" in korean.content()
    assert korean.locator(f'tr[data-case="{case.pk}"] [data-field="status"]').inner_text() == "열림"
    snap(korean, "expert-queue-ko")
    # Made ahead in production (a task when the case opens); here before the page asks.
    from reports.redaction import case_working_copies_make

    case_working_copies_make(case)
    row.get_by_role("link").click()
    page.locator("#claim").click()
    page.wait_for_selector("#review-form")
    case.refresh_from_db()
    assert case.claimed_by == w.erin and case.status == Case.Status.UNDER_REVIEW
    # The clip plays from the segment's blurred working copy (issue #15), made on first need.
    until(lambda: page.evaluate("document.getElementById('player').readyState >= 1"), seconds=90)
    assert "/working-copy.mp4" in page.eval_on_selector("#player", "v => v.currentSrc")
    assert "/original.mp4" in page.get_attribute("#original-link", "href")
    # Keyboard: next window, verdict "abuse" (1), escalate (E), mark the span.
    page.locator("body").press("l")
    assert page.locator("#window-label").inner_text().startswith("#2/2")
    page.locator("body").press("1")
    page.locator("body").press("e")
    assert page.locator('input[name="verdict"][value="abuse"]').is_checked()
    assert page.locator('input[name="outcome"][value="escalate"]').is_checked()
    page.select_option("select[name=category]", "hitting")
    page.fill("#id_span_start_seconds", "0.5")
    page.fill("#id_span_end_seconds", "3")
    page.fill("textarea[name=notes]", "Adult strikes a child at 0.5 s. <b>not bold</b>")
    snap(page, "expert-case-en")
    with commit_and_react():  # reports reacts to the escalation in this process
        page.locator("#submit-review").click()
        page.wait_for_url(f"{live_server.url}/reviews/")
    assert page.locator(".messages .success").is_visible()
    case.refresh_from_db()
    assert case.status == Case.Status.REPORTED
    assert PoliceReport.objects.get(case=case).reason == PoliceReport.Reason.EXPERT
    # Korean: the same pages, translated.
    korean.goto(f"{live_server.url}/reviews/cases/{case.pk}/")
    snap(korean, "expert-case-ko")
    assert not page.js_errors and not korean.js_errors, (page.js_errors, korean.js_errors)


def test_liaison_downloads_and_verifies_the_package(
    browser, live_server, journey_world: World, tmp_path: Path
) -> None:
    w = journey_world
    report = w.report_a
    page = open_as(browser, live_server, w.lee)
    page.goto(f"{live_server.url}/reports/")
    assert page.locator(f'tr[data-report="{report.pk}"]').is_visible()
    assert page.locator("tr[data-report]").count() == 1
    send_live(page, {"type": "report.status", "report": {"id": report.pk, "status": "dispatched"}})
    assert (
        page.locator(f'tr[data-report="{report.pk}"] [data-field="status"]').inner_text()
        == "Dispatched"
    )
    snap(page, "liaison-reports-en")
    page.locator(f'tr[data-report="{report.pk}"] a').click()
    page.select_option("select[name=status]", "acknowledged")
    page.locator("#status-form button").click()
    page.wait_for_selector(".messages .success")
    report.refresh_from_db()
    assert report.status == PoliceReport.Status.ACKNOWLEDGED
    page.locator("#build-package").click()
    with page.expect_download() as download_info:
        page.locator("a.download").first.click()
    path = tmp_path / "package.zip"
    download_info.value.save_as(path)
    snap(page, "liaison-report-en")
    call_command("verify_evidence", str(path))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered = tmp_path / "tampered.zip"
    tampered.write_bytes(bytes(data))
    with pytest.raises(CommandError):
        call_command("verify_evidence", str(tampered))
    assert AuditEvent.objects.filter(action="evidence_package.download", actor=w.lee).exists()
    korean = open_as(browser, live_server, w.lee, lang="ko")
    korean.goto(f"{live_server.url}/reports/{report.pk}/")
    assert "증거 패키지" in korean.content()
    snap(korean, "liaison-report-ko")
    assert not page.js_errors and not korean.js_errors


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_admin_adds_a_camera_and_tests_a_bad_source(
    browser, live_server, journey_world: World, settings
) -> None:
    # The unreachable "camera" is a closed loopback port, which admins may not use otherwise.
    settings.CAMERA_SOURCE_BLOCKED_NETWORKS = []
    w = journey_world
    page = open_as(browser, live_server, w.alice)
    page.goto(f"{live_server.url}/sites/{w.site_a.pk}/")
    send_live(
        page,
        {
            "type": "camera.status",
            "camera": {"id": w.camera_a.pk, "status": "error", "status_detail": "stream lost"},
        },
    )
    row = page.locator(f'tr[data-camera="{w.camera_a.pk}"]')
    assert row.locator('[data-field="status"]').inner_text() == "Error"
    assert row.locator('[data-field="detail"]').inner_text() == "stream lost"
    snap(page, "admin-site-en")
    page.locator("#add-camera").click()
    page.fill("input[name=name]", "Nap room")
    page.fill("input[name=source_uri]", f"http://127.0.0.1:{_closed_port()}/live")
    page.locator("#test-connection").click()
    result = page.locator("#probe-result")
    result.wait_for()
    assert "Host unreachable" in result.inner_text()
    assert result.get_attribute("data-failure") == "unreachable"
    snap(page, "admin-camera-probe-en")
    assert not Camera.objects.filter(name="Nap room").exists()
    page.fill("input[name=analysis_fps]", "500")
    page.locator("#save-camera").click()
    assert "Ensure this value is less than or equal to 60" in page.content()
    page.fill("input[name=analysis_fps]", "8")
    page.fill("input[name=source_uri]", "rtsp://camera.local:554/nap")
    page.locator("#save-camera").click()
    page.wait_for_selector(".messages .success")
    camera = Camera.objects.get(site=w.site_a, name="Nap room")
    assert page.locator(f'tr[data-camera="{camera.pk}"]').is_visible()
    page.goto(
        f"{live_server.url}/sites/cameras/{w.camera_a.pk}/?day={w.uncertain_case_a.started_at.astimezone().date():%Y-%m-%d}"
    )
    snap(page, "admin-camera-day-en")
    korean = open_as(browser, live_server, w.alice, lang="ko")
    korean.goto(f"{live_server.url}/sites/{w.site_a.pk}/")
    assert "카메라" in korean.content()
    snap(korean, "admin-site-ko")
    korean.goto(f"{live_server.url}/sites/{w.site_a.pk}/cameras/new/")
    snap(korean, "admin-camera-form-ko")
    assert not page.js_errors and not korean.js_errors


def test_outsider_is_refused_every_page_and_file(
    browser, live_server, journey_world: World
) -> None:
    w = journey_world
    segment = w.uncertain_case_a.segments.first()
    assert segment is not None
    lee = Client()
    lee.force_login(w.lee)
    lee.post(f"/reports/{w.report_a.pk}/evidence/")
    link = lee.get(f"/reports/{w.report_a.pk}/").context["packages"][0]["url"]
    urls = [
        "/",
        "/sites/",
        f"/sites/{w.site_a.pk}/",
        f"/sites/{w.site_a.pk}/cameras/new/",
        f"/sites/cameras/{w.camera_a.pk}/",
        f"/sites/cameras/{w.camera_a.pk}/edit/",
        "/reviews/",
        f"/reviews/cases/{w.uncertain_case_a.pk}/",
        "/reviews/agreement/",
        "/reports/",
        f"/reports/{w.report_a.pk}/",
        link,
        f"/api/segments/{segment.pk}/original.mp4",
        f"/api/segments/{segment.pk}/preview.mp4",
        "/ops/",
    ]
    page = open_as(browser, live_server, w.charlie)
    for url in urls:
        response = page.goto(f"{live_server.url}{url}")
        assert response is not None and response.status in (403, 404), (url, response.status)
        body = page.content()
        assert w.site_a.address not in body and "Playroom" not in body, url
    snap(page, "outsider-refused-en")
    denied = AuditEvent.objects.filter(actor=w.charlie, outcome="denied").values_list(
        "action", flat=True
    )
    assert {"evidence_package.download", "segment.original.view", "report.view"} <= set(denied)
