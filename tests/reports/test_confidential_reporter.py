"""Mandatory report, confidential reporter: reports name the centre as reporter; the staff
member who triggered or confirmed one is named to the police who received it and to
operators only (아동학대범죄의 처벌 등에 관한 특례법 제10조 제3항)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User

from reports.selectors import report_reporter
from tests.conftest import World, api_as
from tests.support.footage import client_as
from tests.support.storage import footage_segment
from viewings import services

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


@pytest.fixture
def reported(world: World):
    dana = User.objects.create_user("dana-teacher", password="x")
    world.site_a.admins.add(dana)
    segment = footage_segment(world.camera_a, hours_old=2)
    request = services.viewing_request_create(
        site=world.site_a,
        camera=world.camera_a,
        group_or_room="Sunflower",
        child_label="Minjun",
        guardian_name="Kim",
        guardian_contact="010",
        starts_at=segment.started_at - dt.timedelta(minutes=1),
        ends_at=segment.ended_at + dt.timedelta(minutes=1),
        reason="bruise",
        actor=dana,
    )
    report = services.viewing_report_to_police(request=request, actor=dana)
    return request, report


def test_police_and_operators_see_who_reported(world: World, reported):
    _request, report = reported
    assert report_reporter(report) == "dana-teacher"
    for user in (world.lee, world.olga):
        page = client_as(user).get(f"/reports/{report.pk}/").content.decode()
        assert world.site_a.name in page.split('id="reporter"')[1].split("</dd>")[0]
        assert 'id="reporting-staff"' in page and "dana-teacher" in page
        data = api_as(user).get(f"/api/reports/{report.pk}/").json()
        assert data["reporter_centre"] == world.site_a.name
        assert data["reported_by"] == "dana-teacher"


def test_the_centre_and_others_never_learn_who_reported(world: World, reported):
    request, report = reported
    # Another admin of the same centre (perhaps the suspect's colleague or the suspect).
    page = client_as(world.alice).get(f"/viewings/{request.pk}/").content.decode()
    assert f"#{report.pk}" in page and "dana-teacher" not in page
    assert client_as(world.alice).get(f"/reports/{report.pk}/").status_code in (403, 404)
    assert api_as(world.alice).get(f"/api/reports/{report.pk}/").status_code == 404
    case = api_as(world.alice).get(f"/api/cases/{report.case_id}/")
    assert case.status_code == 200 and "dana-teacher" not in case.content.decode()
    # The other station's liaison does not get the report at all.
    assert client_as(world.pat).get(f"/reports/{report.pk}/").status_code == 404
