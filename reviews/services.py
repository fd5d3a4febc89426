"""Writes of the expert review: claims, labels and decisions."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import TYPE_CHECKING

from celery import signature
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import audit_record
from detection.announce import broadcast_case
from detection.models import Band, Case
from detection.services import REPORT_CASE_TASK, case_transition
from reviews.models import ReviewDecision
from reviews.selectors import case_footage_seconds

if TYPE_CHECKING:
    from django.contrib.auth.models import User

REVIEWABLE = (Case.Status.OPEN, Case.Status.UNDER_REVIEW)
# The rules the review form states (issue #15): an escalation by any one expert reports the case
# at once, whatever came before; a dismissal only stands when a second expert agrees.
DISMISS_REVIEWS = 2


class ClaimRefused(ValidationError):
    pass


def _claim_is_free(now: dt.datetime, expert: User) -> Q:
    return Q(claimed_by__isnull=True) | Q(claim_expires_at__lte=now) | Q(claimed_by=expert)


@transaction.atomic
def case_claim(
    *, case: Case, expert: User, ip_address: str | None = None, now: dt.datetime | None = None
) -> Case:
    """Lock a case for one expert for REVIEW_CLAIM_MINUTES.

    The lock is taken by one conditional UPDATE, so two experts clicking at once cannot both
    win: whoever's UPDATE matches no row has lost.
    """
    now = now or timezone.now()
    if ReviewDecision.objects.filter(case=case, expert=expert).exists():
        raise ClaimRefused(_("You have already reviewed this case."))
    expires = now + dt.timedelta(minutes=settings.REVIEW_CLAIM_MINUTES)
    won = (
        Case.objects.filter(pk=case.pk, band=Band.UNCERTAIN, status__in=REVIEWABLE)
        .filter(_claim_is_free(now, expert))
        .update(claimed_by=expert, claim_expires_at=expires, updated_at=now)
    )
    if won != 1:
        raise ClaimRefused(_("Another expert is reviewing this case, or it is no longer open."))
    case.refresh_from_db()
    if case.status == Case.Status.OPEN:
        case_transition(case=case, to=Case.Status.UNDER_REVIEW, actor=expert, ip_address=ip_address)
    audit_record(
        actor=expert,
        action="case.claim",
        target=case,
        ip_address=ip_address,
        details={"expires_at": expires.isoformat()},
    )
    broadcast_case(case, event="case.status")
    return case


@transaction.atomic
def case_release(*, case: Case, expert: User, ip_address: str | None = None) -> Case:
    """Give up a claim; the case goes back to the queue."""
    released = Case.objects.filter(pk=case.pk, claimed_by=expert).update(
        claimed_by=None, claim_expires_at=None, updated_at=timezone.now()
    )
    case.refresh_from_db()
    if released and case.status == Case.Status.UNDER_REVIEW:
        case_transition(case=case, to=Case.Status.OPEN, actor=expert, ip_address=ip_address)
    if released:
        audit_record(actor=expert, action="case.release", target=case, ip_address=ip_address)
        broadcast_case(case, event="case.status")
    return case


def _holds_claim(case: Case, expert: User, now: dt.datetime) -> bool:
    return (
        case.claimed_by_id == expert.pk
        and case.claim_expires_at is not None
        and case.claim_expires_at > now
    )


@transaction.atomic
def review_submit(
    *,
    case: Case,
    expert: User,
    verdict: str,
    outcome: str,
    category: str = ReviewDecision.Category.NONE,
    span_start_seconds: float | None = None,
    span_end_seconds: float | None = None,
    notes: str = "",
    ip_address: str | None = None,
    now: dt.datetime | None = None,
) -> ReviewDecision:
    """Record one expert's label and decision, then settle the case if enough experts agree."""
    now = now or timezone.now()
    locked = Case.objects.select_for_update().select_related("camera__site").get(pk=case.pk)
    if locked.status not in REVIEWABLE or not _holds_claim(locked, expert, now):
        raise ClaimRefused(_("Claim the case before labelling it; your claim may have expired."))
    if outcome not in (ReviewDecision.Outcome.ESCALATE, ReviewDecision.Outcome.DISMISS):
        raise ValidationError({"outcome": _("Choose to escalate or to dismiss.")})
    if verdict == ReviewDecision.Verdict.ABUSE and outcome == ReviewDecision.Outcome.DISMISS:
        raise ValidationError({"outcome": _("A case labelled abuse cannot be dismissed.")})
    if verdict == ReviewDecision.Verdict.NOT_ABUSE and outcome == ReviewDecision.Outcome.ESCALATE:
        raise ValidationError({"outcome": _("A case labelled not abuse cannot be escalated.")})
    if verdict != ReviewDecision.Verdict.ABUSE and category != ReviewDecision.Category.NONE:
        raise ValidationError({"category": _("A category goes only with an abuse verdict.")})
    footage_seconds = case_footage_seconds(locked)
    spans = {"span_start_seconds": span_start_seconds, "span_end_seconds": span_end_seconds}
    for name, value in spans.items():
        if value is not None and not 0 <= value <= footage_seconds:
            raise ValidationError({name: _("The time must lie within the case's footage.")})
    if (
        span_start_seconds is not None
        and span_end_seconds is not None
        and span_end_seconds < span_start_seconds
    ):
        raise ValidationError({"span_end_seconds": _("The end must not come before the start.")})
    decision = ReviewDecision(
        case=locked,
        expert=expert,
        verdict=verdict,
        category=category,
        span_start_seconds=span_start_seconds,
        span_end_seconds=span_end_seconds,
        notes=notes,
        outcome=outcome,
    )
    decision.full_clean()
    decision.save()
    audit_record(
        actor=expert,
        action="review.submit",
        target=locked,
        ip_address=ip_address,
        details={
            "decision": decision.pk,
            "verdict": verdict,
            "category": category,
            "outcome": outcome,
            "span": [span_start_seconds, span_end_seconds],
        },
    )
    _settle(case=locked, actor=expert, ip_address=ip_address)
    case.refresh_from_db()
    return decision


def _settle(*, case: Case, actor: User, ip_address: str | None) -> None:
    outcomes = list(case.decisions.values_list("outcome", flat=True))
    counts = Counter(outcomes)
    if counts[ReviewDecision.Outcome.ESCALATE]:
        # The fact is the case's transition; reports reacts by sending the report (a task
        # queued by name on commit: reviews never imports reports), then tells every portal.
        case_transition(case=case, to=Case.Status.ESCALATED, actor=actor, ip_address=ip_address)
        case_id, actor_id = case.pk, actor.pk
        transaction.on_commit(
            lambda: signature(
                REPORT_CASE_TASK,
                kwargs={
                    "case_id": case_id,
                    "reason": "expert",
                    "actor_id": actor_id,
                    "ip_address": ip_address,
                },
            ).apply_async()
        )
        return
    required = max(case.reviews_required, DISMISS_REVIEWS)
    if required != case.reviews_required:
        Case.objects.filter(pk=case.pk).update(reviews_required=required)
        case.reviews_required = required
    if counts[ReviewDecision.Outcome.DISMISS] < required:
        # Not settled yet: back to the queue for another expert to agree (or to escalate).
        case_transition(
            case=case,
            to=Case.Status.OPEN,
            actor=actor,
            ip_address=ip_address,
            details={"reviews": len(outcomes), "reviews_required": required},
        )
        broadcast_case(case, event="case.status")
        return
    case_transition(case=case, to=Case.Status.DISMISSED, actor=actor, ip_address=ip_address)
    broadcast_case(case, event="case.status")
