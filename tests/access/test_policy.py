"""One policy, two sides: what a user may read (pull) and the live messages they hear (push).

For every user of every role and every object, "receives a push about X" must be exactly "X
is in their scope"; the two were once written apart and drifted (a violent case not yet
reported was pushed to the station's liaisons, who could not open it).
"""

from __future__ import annotations

import pytest

from access.policy import (
    CAMERAS,
    CASES,
    DETECTIONS,
    REPORTS,
    Role,
    Viewer,
    groups_for,
    groups_for_user,
    region_group,
    role_of,
    scope,
    viewer_of,
    visible,
)
from cameras.models import Camera
from detection.models import Case, Detection
from reports.models import PoliceReport
from reports.services import police_report_send
from tests import factories
from tests.conftest import World

pytestmark = pytest.mark.django_db

USERS = ("alice", "bob", "erin", "sam", "lee", "pat", "olga", "charlie")


def _more_cases(world: World) -> None:
    """Every kind of case: violent unreported and reported, uncertain in both regions, an
    uncertain case reported after an expert's escalation, and one of a site that moved."""
    factories.CaseFactory(camera=world.camera_a, band="violent", peak_score=0.99)
    factories.CaseFactory(camera=world.camera_b, band="violent", peak_score=0.99)
    escalated = factories.CaseFactory(camera=world.camera_b, status=Case.Status.ESCALATED)
    police_report_send(case=escalated, reason=PoliceReport.Reason.EXPERT)
    reported_b = factories.CaseFactory(camera=world.camera_b, band="violent", peak_score=0.98)
    police_report_send(case=reported_b, reason=PoliceReport.Reason.VIOLENT)
    # A user with two attachments sees the union: bob also liaises for station_a.
    world.station_a.liaisons.add(world.bob)


def _hears(user_groups: set[str], obj_groups: list[str]) -> bool:
    return bool(user_groups & set(obj_groups))


def test_a_push_reaches_exactly_those_who_may_read_it(world: World) -> None:
    _more_cases(world)
    for detection_case in Case.objects.all()[:2]:
        segment = factories.SegmentFactory(camera=detection_case.camera)
        factories.DetectionFactory(segment=segment)
    subjects = [
        (Case.objects.all(), CASES),
        (Camera.objects.all(), CAMERAS),
        (PoliceReport.objects.all(), REPORTS),
        (Detection.objects.all(), DETECTIONS),
    ]
    checked = 0
    for name in USERS:
        user = getattr(world, name)
        user_groups = set(groups_for_user(user))
        for queryset, subject in subjects:
            readable = set(visible(queryset, user, subject).values_list("pk", flat=True))
            for obj in queryset:
                assert _hears(user_groups, groups_for(obj, subject)) == (obj.pk in readable), (
                    name,
                    type(obj).__name__,
                    obj.pk,
                )
                checked += 1
    assert checked > 8 * 10  # every user against every object


def test_an_unreported_violent_case_reaches_its_station_only_once_reported(world: World) -> None:
    case = factories.CaseFactory(camera=world.camera_a, band="violent", peak_score=0.99)
    lee_groups = set(groups_for_user(world.lee))
    assert not _hears(lee_groups, groups_for(case, CASES))
    assert not visible(Case.objects.all(), world.lee, CASES).filter(pk=case.pk).exists()
    police_report_send(case=case, reason=PoliceReport.Reason.VIOLENT)
    assert _hears(lee_groups, groups_for(case, CASES))
    assert visible(Case.objects.all(), world.lee, CASES).filter(pk=case.pk).exists()


def test_roles_follow_attachments(world: World) -> None:
    assert {name: role_of(getattr(world, name)) for name in USERS} == {
        "alice": Role.CENTRE_ADMIN,
        "bob": Role.CENTRE_ADMIN,
        "erin": Role.EXPERT,
        "sam": Role.EXPERT,
        "lee": Role.LIAISON,
        "pat": Role.LIAISON,
        "olga": Role.OPERATOR,
        "charlie": Role.NONE,
    }
    world.erin.is_active = False
    assert role_of(world.erin) == Role.NONE and groups_for_user(world.erin) == []
    assert scope(world.erin, CASES) is not None
    assert not visible(Case.objects.all(), world.erin, CASES).exists()


def test_a_malformed_region_list_grants_nothing(world: World) -> None:
    world.sam.expert_profile.regions = {}
    world.sam.expert_profile.save(update_fields=["regions"])
    viewer = viewer_of(world.sam)
    assert viewer.is_expert and viewer.expert_regions == frozenset()
    assert viewer.groups() == []
    assert not visible(Case.objects.all(), viewer, CASES).exists()


def test_expert_groups_name_their_regions(world: World) -> None:
    assert groups_for_user(world.sam) == [region_group("Seoul")]
    assert groups_for_user(world.erin) == ["experts.all"]
    assert Viewer(user_id=None).groups() == []


def test_groups_from_known_attachments_equal_the_read_ones_and_cost_no_query(
    world: World, django_assert_num_queries
) -> None:
    """The inference worker announces each scored window with the site it just read; the
    groups must be the ones the policy reads itself, and half-known attachments are read."""
    _more_cases(world)
    segment = factories.SegmentFactory(camera=world.camera_b)
    detection = factories.DetectionFactory(segment=segment)
    read = groups_for(detection, DETECTIONS)
    with django_assert_num_queries(0):
        known = groups_for(detection, DETECTIONS, known={"site": world.camera_b.site_id})
    assert known == read
    for case in Case.objects.select_related("camera"):
        # A case has a site, a station, a band and a region: the site alone is not enough.
        with django_assert_num_queries(1):
            partly = groups_for(case, CASES, known={"site": case.camera.site_id})
        assert partly == groups_for(case, CASES)
