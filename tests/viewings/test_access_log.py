"""The director's access log: built from the audit chain, filterable, CSV and printable."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from detection.retention import retention_run
from tests.conftest import World
from tests.support.footage import client_as
from tests.support.storage import footage_segment

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def log_page(world: World, query: str = "") -> str:
    response = client_as(world.alice).get(f"/viewings/site/{world.site_a.pk}/access-log/{query}")
    assert response.status_code == 200
    return response.content.decode()


def test_a_view_made_here_is_listed_with_who_and_camera(world: World):
    segment = footage_segment(world.camera_a, hours_old=1)
    other_site = footage_segment(world.camera_b, hours_old=1)
    assert client_as(world.alice).get(f"/api/segments/{segment.pk}/original.mp4").status_code == 200
    assert (
        client_as(world.bob).get(f"/api/segments/{other_site.pk}/original.mp4").status_code == 200
    )
    view = AuditEvent.objects.get(action="segment.original.view", object_id=str(segment.pk))
    elsewhere = AuditEvent.objects.get(action="segment.original.view", object_id=str(other_site.pk))

    page = log_page(world)

    row = page.split(f'data-event="{view.pk}"')[1].split("</tr>")[0]
    assert "alice" in row and world.camera_a.name in row and "열람 / view" in row
    assert f'data-event="{elsewhere.pk}"' not in page  # site B's footage is not site A's log
    assert "영유아보육법 제15조의5" in page


def test_erasures_are_listed_and_filters_by_camera_and_day_work(world: World, settings):
    old = footage_segment(world.camera_a, hours_old=24 * 61)
    retention_run(dry_run=False)
    purge = AuditEvent.objects.get(action="segment.purge", object_id=str(old.pk))
    assert f'data-event="{purge.pk}"' in log_page(world)
    assert "보관 기간 경과" in log_page(world)

    other_camera = world.site_a.cameras.create(name="Hall")
    assert f'data-event="{purge.pk}"' not in log_page(world, f"?camera={other_camera.pk}")
    today = timezone.now().astimezone(dt.timezone(dt.timedelta(hours=9))).date()
    yesterday = today - dt.timedelta(days=1)
    assert f'data-event="{purge.pk}"' in log_page(world, f"?day_from={today}&day_to={today}")
    assert f'data-event="{purge.pk}"' not in log_page(world, f"?day_to={yesterday}")


def test_csv_and_printable_page(world: World):
    segment = footage_segment(world.camera_a, hours_old=1)
    client_as(world.alice).get(f"/api/segments/{segment.pk}/preview.mp4")
    response = client_as(world.alice).get(
        f"/viewings/site/{world.site_a.pk}/access-log/?format=csv"
    )
    assert response["Content-Type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff일시/time,")
    assert "alice" in text and world.camera_a.name in text
    printable = log_page(world, "?format=print")
    assert "영상정보 열람·제공 관리대장" in printable and "display: none" in printable
    # Reading the log is itself on record.
    assert AuditEvent.objects.filter(action="access_log.view", actor=world.alice).count() >= 2
