"""Who may judge a case: an expert's regions, never the cases of a centre they administer."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from access.policy import EXPERTS_ALL_GROUP, groups_for_user
from audit.models import AuditEvent
from detection.models import Case
from detection.selectors import cases_visible_to
from reviews.models import ExpertProfile, ReviewDecision
from reviews.selectors import case_for_review, review_queue_for
from tests import factories
from tests.conftest import World
from tests.support.footage import client_as

pytestmark = pytest.mark.django_db


def test_an_admin_who_is_also_an_expert_never_judges_their_own_centre(world: World) -> None:
    # Bob administers the Busan centre and becomes an expert of every region.
    factories.ExpertProfileFactory(user=world.bob, regions=[])
    own, other = world.uncertain_case_b, world.uncertain_case_a
    assert set(review_queue_for(world.bob)) == {other}
    assert case_for_review(world.bob, own.pk) is None
    bob = client_as(world.bob)
    assert bob.get(reverse("review-case", args=[own.pk])).status_code == 404
    assert bob.post(reverse("review-claim", args=[own.pk])).status_code == 404
    decide = bob.post(
        reverse("review-decide", args=[own.pk]),
        {"verdict": "not_abuse", "outcome": "dismiss", "notes": "mine"},
    )
    assert decide.status_code == 404
    own.refresh_from_db()
    assert own.status == Case.Status.OPEN and own.claimed_by is None
    assert not ReviewDecision.objects.filter(case=own).exists()
    assert AuditEvent.objects.filter(
        action="case.view", outcome="denied", actor=world.bob, details__case=own.pk
    ).exists()
    # As the centre's admin he still sees the case, and the alert link takes him to the admin's
    # case page (issue #15), which shows no review form.
    assert own in cases_visible_to(world.bob)
    opened = bob.get(reverse("case-open", args=[own.pk]))
    assert opened.status_code == 302
    assert opened["Location"] == reverse("site-case", args=[own.pk])
    admin_page = bob.get(opened["Location"])
    assert admin_page.status_code == 200 and "review-form" not in admin_page.text
    # Another region's case he may judge, and its link opens the review page.
    assert bob.get(reverse("review-case", args=[other.pk])).status_code == 200
    assert bob.get(reverse("case-open", args=[other.pk]))["Location"] == reverse(
        "review-case", args=[other.pk]
    )


def test_an_expert_of_other_regions_cannot_review_through_admin_rights(world: World) -> None:
    # Regions limit review even where the user sees the case as a centre's admin.
    factories.ExpertProfileFactory(user=world.bob, regions=["Seoul"])
    assert set(review_queue_for(world.bob)) == {world.uncertain_case_a}
    assert case_for_review(world.bob, world.uncertain_case_b.pk) is None


@pytest.mark.parametrize("regions", [{}, "", "Seoul", [""], [1, 2], {"Seoul": True}])
def test_malformed_regions_are_refused_and_grant_nothing(world: World, regions) -> None:
    profile = ExpertProfile.objects.get(user=world.sam)
    profile.regions = regions
    with pytest.raises(ValidationError):
        profile.full_clean()
    # Written past validation (a script, a raw update), they still open no region.
    ExpertProfile.objects.filter(pk=profile.pk).update(regions=regions)
    assert list(review_queue_for(world.sam)) == []
    assert list(cases_visible_to(world.sam)) == []
    assert groups_for_user(world.sam) == []


def test_well_formed_regions_are_accepted(world: World) -> None:
    for regions in ([], ["Seoul"], ["Seoul", "Busan"]):
        profile = ExpertProfile.objects.get(user=world.sam)
        profile.regions = regions
        profile.full_clean()
    assert EXPERTS_ALL_GROUP in groups_for_user(world.erin)
