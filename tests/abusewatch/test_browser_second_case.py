"""Issue #15 Deliver 9: a second case after a quiet gap, and the camera wall, in headless
Chromium (Debian's), English and Korean where text is checked.

The windows go through the pipeline's own store-triage-apply step (detection_store) with the
scores given here, so the cases seen are those the live pipeline would make; the live rows
are handed to the page as alerts.js hands on a socket message. Screenshots go to
settings.TEST_OUTPUT_DIR/screenshots (test output, not in git).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from cameras.models import Site
from detection.models import Case, Segment
from detection.payloads import case_payload
from detection.pipeline import Scored, detection_store
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
from tests.abusewatch.test_camera_wall_support import face_clip_bytes
from tests.conftest import World
from tests.support.browser import until

pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]

WINDOW = dt.timedelta(seconds=2)


def score_windows(camera, version, start: dt.datetime, scores: list[float]) -> list[Segment]:
    """One 2-second window per score from `start`, stored, triaged and applied in turn."""
    segments: list[Segment] = []
    for index, score in enumerate(scores):
        began = start + index * WINDOW
        segment = factories.SegmentFactory(
            camera=camera, started_at=began, ended_at=began + WINDOW, status="pending"
        )
        detection_store(
            scored=Scored(segment, score, preprocess_ms=1.0, inference_ms=1.0, batch_size=1),
            version=version,
        )
        segments.append(segment)
    return segments


def live_case(page, case_id: int) -> None:
    case = Case.objects.select_related("camera__site").get(pk=case_id)
    send_live(page, {"type": "case.alert", "case": case_payload(case)})
    page.locator(f'tr[data-case="{case_id}"]').wait_for()


@pytest.mark.parametrize(
    ("lang", "quiet"), [("en", "Ended after a quiet period"), ("ko", "조용한 시간이 지나 종료됨")]
)
def test_a_second_case_opens_after_a_quiet_gap_and_both_appear_live(
    browser, live_server, journey_world: World, settings, lang: str, quiet: str
) -> None:
    settings.CASE_MERGE_GAP_SECONDS = 10.0
    w = journey_world
    Site.objects.filter(pk=w.site_a.pk).update(timezone="Asia/Seoul")
    version = factories.ModelVersionFactory(low_threshold=0.3, high_threshold=0.8)
    page = open_as(browser, live_server, w.alice, lang=lang)
    page.goto(f"{live_server.url}/sites/{w.site_a.pk}/")
    start = timezone.now() - dt.timedelta(minutes=2)
    before = set(Case.objects.values_list("pk", flat=True))

    # An uncertain incident (two windows) ...
    score_windows(w.camera_a, version, start, [0.6, 0.65])
    (first_id,) = set(Case.objects.values_list("pk", flat=True)) - before
    live_case(page, first_id)
    # ... 20 s of calm (longer than the 10 s merge gap) ...
    score_windows(w.camera_a, version, start + 2 * WINDOW, [0.1] * 10)
    # ... and activity again: a second case, not the first one grown.
    score_windows(w.camera_a, version, start + 12 * WINDOW, [0.7, 0.62])
    (second_id,) = set(Case.objects.values_list("pk", flat=True)) - before - {first_id}
    live_case(page, second_id)

    first, second = Case.objects.get(pk=first_id), Case.objects.get(pk=second_id)
    assert first.span_end_reason == "quiet"
    assert first.ended_at <= start + 2 * WINDOW + dt.timedelta(seconds=2)  # did not grow
    assert second.started_at >= start + 12 * WINDOW
    assert second.follows_id is None  # after a quiet gap: a new incident, not a follow-up
    rows = page.locator("tr[data-case]")
    ids = [rows.nth(i).get_attribute("data-case") for i in range(rows.count())]
    assert ids.index(str(second_id)) < ids.index(str(first_id))  # newest first
    snap(page, f"admin-second-case-live-{lang}")

    # The live row's number opens the case, as a rendered row's does.
    page.locator(f'tr[data-case="{second_id}"] td a').first.click()
    page.wait_for_url(f"**/sites/cases/{second_id}/")
    assert page.locator("[data-field='span-end']").count() == 0  # still open
    assert page.locator("[data-field='follows']").count() == 0
    snap(page, f"admin-second-case-{lang}")
    page.goto(f"{live_server.url}/cases/{first_id}/")
    assert quiet in page.locator("[data-field='span-end']").first.inner_text()
    snap(page, f"admin-first-case-quiet-{lang}")
    assert not page.js_errors, page.js_errors


@pytest.mark.parametrize(("lang", "title"), [("en", "Camera wall"), ("ko", "카메라 화면 모음")])
def test_the_admin_sees_the_camera_wall_and_plays_the_last_minutes(
    browser, live_server, journey_world: World, lang: str, title: str
) -> None:
    w = journey_world
    clip = face_clip_bytes()
    # Windows after the journey world's case footage (which starts now): the latest ones.
    for seconds_ahead in (10, 20):
        ended = timezone.now() + dt.timedelta(seconds=seconds_ahead)
        segment = factories.SegmentFactory(
            camera=w.camera_a, started_at=ended - WINDOW, ended_at=ended, status="analysed"
        )
        segment.original.save("clip.mp4", ContentFile(clip), save=True)
    page = open_as(browser, live_server, w.alice, lang=lang)
    page.goto(f"{live_server.url}/sites/{w.site_a.pk}/")
    page.locator("#camera-wall-link").click()
    assert page.locator("h1").inner_text() == title
    tile = page.locator(f'.camera-tile[data-camera="{w.camera_a.pk}"]')
    image = tile.locator("img.snapshot")
    until(lambda: image.evaluate("i => i.complete && i.naturalWidth") > 0, seconds=60)
    assert page.locator(f'.camera-tile[data-camera="{w.camera_b.pk}"]').count() == 0
    # A newly scored window of the camera fetches its still again (the socket's message).
    first_src = image.get_attribute("src") or ""
    send_live(page, {"type": "detection.scored", "detection": {"camera": w.camera_a.pk}})
    until(lambda: (image.get_attribute("src") or "") != first_src, seconds=10)
    assert "?t=" in (image.get_attribute("src") or "")
    until(lambda: image.evaluate("i => i.complete && i.naturalWidth") > 0, seconds=60)
    # Another camera's message changes nothing here.
    refreshed = image.get_attribute("src")
    send_live(page, {"type": "detection.scored", "detection": {"camera": w.camera_b.pk}})
    assert image.get_attribute("src") == refreshed
    snap(page, f"admin-camera-wall-{lang}")
    tile.locator("a.button").click()
    until(lambda: page.eval_on_selector("#recent-player", "v => v.readyState") >= 1, seconds=120)
    assert "/working-copy.mp4" in page.eval_on_selector("#recent-player", "v => v.currentSrc")
    # The journey world's case footage (two windows, just now) and the two windows above.
    recent = (
        Segment.objects.filter(
            camera=w.camera_a, started_at__gte=timezone.now() - dt.timedelta(minutes=5)
        )
        .exclude(original="")
        .count()
    )
    assert recent == 4
    assert page.locator("#recent-position").inner_text() == f"1 / {recent}"
    snap(page, f"admin-last-minutes-{lang}")
    assert not page.js_errors, page.js_errors
