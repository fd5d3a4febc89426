from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from access.policy import Role, is_reviewer, role_of
from audit.services import audit_record
from detection.models import Case
from portal.http import client_ip, scoped_or_404
from portal.timeline import timeline_bars
from reviews.forms import QueueFilterForm, ReviewForm
from reviews.models import ReviewDecision
from reviews.selectors import (
    case_footage_seconds,
    case_segments,
    case_timeline,
    cases_for_review,
    claim_is_active,
    review_agreement,
    review_queue_facets,
    review_queue_for,
    reviews_remaining,
)
from reviews.services import ClaimRefused, case_claim, case_release, review_submit

View = Callable[..., HttpResponse]


def reviewer_required(view: View) -> View:
    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_reviewer(request.user):
            audit_record(
                actor=request.user,
                action="review.page",
                ip_address=client_ip(request),
                outcome="denied",
                details={"path": request.path[:200]},
            )
            return render(request, "no_role.html", status=403)
        return view(request, *args, **kwargs)

    return wrapped


def _case_or_404(request: HttpRequest, pk: int) -> Case:
    return scoped_or_404(
        cases_for_review(request.user),
        pk,
        request=request,
        action="case.view",
        details={"case": pk},
        message="No such case.",
    )


def _expert(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # guaranteed by login_required
    return request.user


@require_GET
@reviewer_required
def review_queue(request: HttpRequest) -> HttpResponse:
    filters = QueueFilterForm(request.GET or None)
    sort, site, region = "score", None, ""
    if filters.is_valid():
        sort = filters.cleaned_data["sort"]
        site = filters.cleaned_data["site"]
        region = filters.cleaned_data["region"] or ""
    cases = review_queue_for(request.user, sort=sort, site=site, region=region)[:200]
    sites, regions = review_queue_facets(request.user)
    return render(
        request,
        "reviews/queue.html",
        {
            "cases": cases,
            "filters": filters,
            "sort": sort,
            "site": site,
            "region": region,
            "sites": sites,
            "regions": regions,
            "now_utc": timezone.now(),
        },
    )


def _render_case(
    request: HttpRequest, case: Case, form: ReviewForm | None = None, status: int = 200
) -> HttpResponse:
    segments = case_segments(case)
    timeline = case_timeline(case)
    bars = timeline_bars((w.start, w.end, w.score, w.band, w.segment, w.in_case) for w in timeline)
    held_by_me = claim_is_active(case) and case.claimed_by_id == request.user.pk
    return render(
        request,
        "reviews/case.html",
        {
            "case": case,
            "segments": segments,
            "timeline": [window.__dict__ for window in timeline],
            "bars": bars,
            "bar_origin": min((w.start for w in timeline), default=0.0),
            "bar_span": max((w.end for w in timeline), default=1.0)
            - min((w.start for w in timeline), default=0.0),
            "footage_seconds": case_footage_seconds(case),
            "decisions": case.decisions.select_related("expert"),
            "reviews_remaining": reviews_remaining(case),
            "already_reviewed": ReviewDecision.objects.filter(
                case=case, expert_id=request.user.pk
            ).exists(),
            "claim_active": claim_is_active(case),
            "held_by_me": held_by_me,
            "reviewable": case.status in (Case.Status.OPEN, Case.Status.UNDER_REVIEW),
            "form": form or ReviewForm(),
            "claim_minutes": settings.REVIEW_CLAIM_MINUTES,
        },
        status=status,
    )


@require_GET
@reviewer_required
def review_case(request: HttpRequest, pk: int) -> HttpResponse:
    case = _case_or_404(request, pk)
    audit_record(actor=request.user, action="case.view", target=case, ip_address=client_ip(request))
    return _render_case(request, case)


@require_POST
@reviewer_required
def review_claim(request: HttpRequest, pk: int) -> HttpResponse:
    case = _case_or_404(request, pk)
    try:
        case_claim(case=case, expert=_expert(request), ip_address=client_ip(request))
    except ClaimRefused as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("review-case", pk=case.pk)


@require_POST
@reviewer_required
def review_release(request: HttpRequest, pk: int) -> HttpResponse:
    case = _case_or_404(request, pk)
    case_release(case=case, expert=_expert(request), ip_address=client_ip(request))
    return redirect("review-queue")


@require_POST
@reviewer_required
def review_decide(request: HttpRequest, pk: int) -> HttpResponse:
    case = _case_or_404(request, pk)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        return _render_case(request, case, form, status=400)
    try:
        review_submit(
            case=case, expert=_expert(request), ip_address=client_ip(request), **form.cleaned_data
        )
    except ClaimRefused as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("review-case", pk=case.pk)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, exc.messages)
        return _render_case(request, case, form, status=400)
    case.refresh_from_db()
    messages.success(request, _("Your review of case %(case)s is saved.") % {"case": case.pk})
    return redirect("review-queue")


@require_GET
@login_required
def review_agreement_view(request: HttpRequest) -> HttpResponse:
    if role_of(request.user) != Role.OPERATOR:
        return render(request, "no_role.html", status=403)
    return render(request, "reviews/agreement.html", {"agreement": review_agreement()})
