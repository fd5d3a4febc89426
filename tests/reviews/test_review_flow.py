from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from detection.models import Case
from reports.models import PoliceReport
from reviews.models import ReviewDecision
from reviews.services import ClaimRefused, case_claim, review_submit
from tests.conftest import World
from tests.support.footage import client_as

pytestmark = pytest.mark.django_db


def decide(client, case, **fields):
    data = {"verdict": "abuse", "category": "hitting", "outcome": "escalate", "notes": ""}
    data.update(fields)
    return client.post(reverse("review-decide", args=[case.pk]), data)


def test_queue_lists_only_the_experts_regions_and_is_refused_to_others(footage: World) -> None:
    w = footage
    erin = client_as(w.erin).get(reverse("review-queue"))
    assert erin.status_code == 200
    assert f'data-case="{w.uncertain_case_a.pk}"' in erin.text
    assert f'data-case="{w.uncertain_case_b.pk}"' in erin.text
    assert f'data-case="{w.violent_case_a.pk}"' not in erin.text
    sam = client_as(w.sam).get(reverse("review-queue"))
    assert f'data-case="{w.uncertain_case_b.pk}"' not in sam.text
    for outsider in (w.charlie, w.alice, w.lee):
        assert client_as(outsider).get(reverse("review-queue")).status_code == 403


def test_queue_sorts_and_filters(footage: World) -> None:
    w = footage
    Case.objects.filter(pk=w.uncertain_case_b.pk).update(peak_score=0.7)
    client = client_as(w.erin)
    by_score = client.get(reverse("review-queue"), {"sort": "score"}).text
    assert by_score.index(f'data-case="{w.uncertain_case_b.pk}"') < by_score.index(
        f'data-case="{w.uncertain_case_a.pk}"'
    )
    low_first = client.get(reverse("review-queue"), {"sort": "-score"}).text
    assert low_first.index(f'data-case="{w.uncertain_case_a.pk}"') < low_first.index(
        f'data-case="{w.uncertain_case_b.pk}"'
    )
    only_busan = client.get(reverse("review-queue"), {"region": "Busan"}).text
    assert f'data-case="{w.uncertain_case_a.pk}"' not in only_busan
    assert f'data-case="{w.uncertain_case_b.pk}"' in only_busan
    only_site_a = client.get(reverse("review-queue"), {"site": w.site_a.pk}).text
    assert f'data-case="{w.uncertain_case_b.pk}"' not in only_site_a
    # Hostile filters are ignored, never a 500.
    for params in ({"site": "x'; drop"}, {"sort": "<script>"}, {"region": "r" * 5000}):
        assert client.get(reverse("review-queue"), params).status_code == 200


def test_claim_is_exclusive_and_expires(footage: World, settings) -> None:
    settings.REVIEW_CLAIM_MINUTES = 15
    w = footage
    case = w.uncertain_case_a
    case_claim(case=case, expert=w.erin)
    case.refresh_from_db()
    assert case.claimed_by == w.erin and case.status == Case.Status.UNDER_REVIEW
    with pytest.raises(ClaimRefused):
        case_claim(case=case, expert=w.sam)
    # The claim lapses: after 15 minutes another expert may take the case.
    later = timezone.now() + dt.timedelta(minutes=16)
    case_claim(case=case, expert=w.sam, now=later)
    case.refresh_from_db()
    assert case.claimed_by == w.sam
    # Erin's lapsed claim no longer lets her label it.
    with pytest.raises(ClaimRefused):
        review_submit(
            case=case, expert=w.erin, verdict="abuse", category="hitting", outcome="escalate"
        )


def test_claim_refused_through_the_page_for_a_second_expert(footage: World) -> None:
    w = footage
    case = w.uncertain_case_a
    assert client_as(w.erin).post(reverse("review-claim", args=[case.pk])).status_code == 302
    page = client_as(w.sam).post(reverse("review-claim", args=[case.pk]), follow=True)
    assert "Another expert is reviewing this case" in page.text
    case.refresh_from_db()
    assert case.claimed_by == w.erin


def test_escalation_sends_a_police_report(footage: World, commit_and_react) -> None:
    w = footage
    case = w.uncertain_case_a
    client = client_as(w.erin)
    page = client.get(reverse("review-case", args=[case.pk]))
    assert page.status_code == 200
    assert 'class="bar bar-uncertain in-case"' in page.text and "bar-safe" in page.text
    client.post(reverse("review-claim", args=[case.pk]))
    with commit_and_react():
        response = decide(client, case, span_start_seconds="0.5", span_end_seconds="2.5")
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == Case.Status.REPORTED
    report = PoliceReport.objects.get(case=case)
    assert report.reason == PoliceReport.Reason.EXPERT and report.station == w.station_a
    decision = ReviewDecision.objects.get(case=case)
    assert decision.span_start_seconds == 0.5 and decision.category == "hitting"
    assert AuditEvent.objects.filter(action="review.submit", object_id=str(case.pk)).exists()


def test_a_dismissal_needs_a_second_expert_but_one_escalation_reports_at_once(
    footage: World, commit_and_react
) -> None:
    """Issue #15: the form says escalating reports at once; after a dismissal it waited for a
    third expert instead (and the demo had two, so it never went)."""
    w = footage
    case = w.uncertain_case_a
    first = client_as(w.erin)
    first.post(reverse("review-claim", args=[case.pk]))
    assert (
        decide(first, case, verdict="not_abuse", category="", outcome="dismiss").status_code == 302
    )
    case.refresh_from_db()
    assert (
        case.status == Case.Status.OPEN and case.reviews_required == 2 and case.claimed_by is None
    )
    page = client_as(w.sam).get(reverse("review-case", args=[case.pk]))
    assert "1 more decision needed: a dismissal stands only when a second expert agrees" in (
        page.text
    )
    # Erin cannot review twice.
    with pytest.raises(ClaimRefused):
        case_claim(case=case, expert=w.erin)
    second = client_as(w.sam)
    second.post(reverse("review-claim", args=[case.pk]))
    with commit_and_react():
        decide(second, case, verdict="abuse", category="pushing", outcome="escalate")
    case.refresh_from_db()
    assert case.status == Case.Status.REPORTED
    assert PoliceReport.objects.get(case=case).reason == PoliceReport.Reason.EXPERT
    assert case.decisions.count() == 2


def test_two_agreeing_dismissals_dismiss(footage: World) -> None:
    w = footage
    case = w.uncertain_case_a
    for expert in (w.erin, w.sam):
        client = client_as(expert)
        client.post(reverse("review-claim", args=[case.pk]))
        decide(client, case, verdict="not_abuse", category="", outcome="dismiss")
    case.refresh_from_db()
    assert case.status == Case.Status.DISMISSED and case.reviews_required == 2


def test_a_not_abuse_review_keeps_no_category_even_when_the_browser_sends_one(
    footage: World,
) -> None:
    """Issue #15: the category list had no empty choice, so "not abuse" was stored as hitting."""
    w = footage
    case = w.uncertain_case_a
    client = client_as(w.erin)
    form_page = client.get(reverse("review-case", args=[case.pk]))
    client.post(reverse("review-claim", args=[case.pk]))
    form_page = client.get(reverse("review-case", args=[case.pk]))
    assert '<option value="" selected>' in form_page.text  # nothing chosen until the expert does
    decide(client, case, verdict="not_abuse", category="hitting", outcome="dismiss")
    decision = ReviewDecision.objects.get(case=case, expert=w.erin)
    assert decision.category == ReviewDecision.Category.NONE
    assert "Hitting" not in client.get(reverse("review-case", args=[case.pk])).text


def test_the_database_refuses_a_category_without_an_abuse_verdict(footage: World) -> None:
    from django.db import IntegrityError, transaction

    w = footage
    base = {"case": w.uncertain_case_a, "expert": w.erin, "outcome": "dismiss"}
    for verdict in ("not_abuse", "unsure"):
        with pytest.raises(IntegrityError), transaction.atomic():
            ReviewDecision.objects.create(verdict=verdict, category="hitting", **base)
    ReviewDecision.objects.create(verdict="not_abuse", category="none", **base)


def test_the_service_refuses_a_category_without_an_abuse_verdict(footage: World) -> None:
    from django.core.exceptions import ValidationError

    from reviews.services import review_submit

    w = footage
    case = case_claim(case=w.uncertain_case_a, expert=w.erin)
    with pytest.raises(ValidationError, match="only with an abuse verdict"):
        review_submit(
            case=case, expert=w.erin, verdict="unsure", outcome="dismiss", category="kicking"
        )
