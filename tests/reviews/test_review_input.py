from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from detection.models import Case
from reviews.models import ReviewDecision
from tests.conftest import World
from tests.support.footage import client_as

pytestmark = pytest.mark.django_db

VALID = {"verdict": "unsure", "category": "other", "outcome": "escalate", "notes": ""}


@pytest.fixture
def claimed(footage: World) -> tuple[World, object]:
    client = client_as(footage.erin)
    client.post(reverse("review-claim", args=[footage.uncertain_case_a.pk]))
    return footage, client


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"verdict": "maybe"}, "verdict"),
        ({"verdict": ""}, "verdict"),
        ({"outcome": "<script>x</script>"}, "outcome"),
        ({"category": "biting"}, "category"),
        ({"verdict": "abuse", "category": ""}, "category"),
        ({"span_start_seconds": "abc"}, "span_start_seconds"),
        ({"span_start_seconds": "-1"}, "span_start_seconds"),
        ({"span_start_seconds": "1e308"}, "span_start_seconds"),
        ({"span_start_seconds": "inf"}, "span_start_seconds"),
        ({"span_start_seconds": "3", "span_end_seconds": "1"}, "span_end_seconds"),
        ({"span_end_seconds": "500"}, "span_end_seconds"),  # beyond the case's footage
        ({"notes": "n" * 5001}, "notes"),
        ({"verdict": "abuse", "category": "hitting", "outcome": "dismiss"}, "outcome"),
        ({"verdict": "not_abuse", "outcome": "escalate"}, "outcome"),
    ],
)
def test_bad_review_input_is_refused_with_the_field_named(claimed, changes, field) -> None:
    world, client = claimed
    case = world.uncertain_case_a
    response = client.post(reverse("review-decide", args=[case.pk]), {**VALID, **changes})
    assert response.status_code == 400
    assert field in response.context["form"].errors, response.context["form"].errors
    assert not ReviewDecision.objects.filter(case=case).exists()
    case.refresh_from_db()
    assert case.status == Case.Status.UNDER_REVIEW


def test_notes_with_html_are_shown_escaped(claimed) -> None:
    world, client = claimed
    case = world.uncertain_case_a
    hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    # Unsure + dismiss leaves the case open for a second expert, so the notes show on its page.
    client.post(
        reverse("review-decide", args=[case.pk]),
        {**VALID, "outcome": "dismiss", "notes": hostile},
    )
    page = client_as(world.sam).get(reverse("review-case", args=[case.pk])).text
    assert hostile not in page
    assert "&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in page


def test_review_pages_are_scoped(footage: World) -> None:
    w = footage
    busan_case = w.uncertain_case_b
    # Sam reviews Seoul only: Busan's case does not exist for him.
    sam = client_as(w.sam)
    assert sam.get(reverse("review-case", args=[busan_case.pk])).status_code == 404
    for name in ("review-claim", "review-release", "review-decide"):
        assert sam.post(reverse(name, args=[busan_case.pk]), VALID).status_code == 404
    # A violent case is not the experts' to review.
    erin = client_as(w.erin)
    assert erin.get(reverse("review-case", args=[w.violent_case_a.pk])).status_code == 404
    assert erin.get(reverse("review-case", args=[999999])).status_code == 404
    for user in (w.alice, w.lee, w.charlie):
        client = client_as(user)
        assert client.get(reverse("review-case", args=[busan_case.pk])).status_code in (403, 404)
        assert client.post(reverse("review-claim", args=[busan_case.pk])).status_code in (403, 404)
    busan_case.refresh_from_db()
    assert busan_case.claimed_by is None and busan_case.status == Case.Status.OPEN
    assert AuditEvent.objects.filter(action="case.view", outcome="denied").exists()
    # GET on a POST-only endpoint changes nothing.
    assert erin.get(reverse("review-claim", args=[busan_case.pk])).status_code == 405


def test_posts_need_a_csrf_token(footage: World) -> None:
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(footage.erin)
    response = client.post(reverse("review-claim", args=[footage.uncertain_case_a.pk]))
    assert response.status_code == 403
    footage.uncertain_case_a.refresh_from_db()
    assert footage.uncertain_case_a.claimed_by is None
