"""Writes to cases: the status machine every app moves a case through."""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery import signature
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from audit.typing import Actor
from detection.announce import broadcast_case
from detection.bands import Band
from detection.models import Case

__all__ = [
    "REPORT_CASE_TASK",
    "IllegalTransition",
    "case_end_span",
    "case_transition",
]

# The task with which reports reacts to a case that must reach the police; queued by name on
# commit, because reports sits above detection and reviews.
REPORT_CASE_TASK = "reports.report_case"


class IllegalTransition(ValidationError):
    pass


@transaction.atomic
def case_transition(
    *,
    case: Case,
    to: str,
    actor: Actor,
    ip_address: str | None = None,
    details: dict[str, Any] | None = None,
) -> Case:
    """Move a case to another status, refusing any move the status machine does not allow."""
    locked = Case.objects.select_for_update().get(pk=case.pk)
    if not locked.can_move_to(to):
        raise IllegalTransition(
            f"A case that is {locked.get_status_display().lower()} cannot become {to}."
        )
    previous = locked.status
    locked.status = to
    if to != Case.Status.UNDER_REVIEW:
        locked.claimed_by = None
        locked.claim_expires_at = None
    locked.save(update_fields=["status", "claimed_by", "claim_expires_at", "updated_at"])
    audit_record(
        actor=actor,
        action="case.transition",
        target=locked,
        ip_address=ip_address,
        details={"from": previous, "to": to, **(details or {})},
    )
    case.refresh_from_db()
    return locked


def cases_end_quiet_spans(*, now: dt.datetime | None = None) -> int:
    """End the span of every case whose camera has been quiet past the quiet period.

    Triage ends a case when the camera's next window arrives; a camera that stops sending
    altogether (switched off, cut) sends none, so a periodic sweep ends it too. The slack
    leaves windows still waiting for a score the chance to extend it first. Returns how many.
    """
    now = now or timezone.now()
    gap = dt.timedelta(seconds=settings.CASE_MERGE_GAP_SECONDS)
    cutoff = now - gap - dt.timedelta(seconds=settings.CASE_QUIET_SWEEP_SLACK_SECONDS)
    ended = 0
    for case_id, ended_at in Case.objects.filter(
        span_ended_at__isnull=True, ended_at__lt=cutoff
    ).values_list("pk", "ended_at"):
        # The cutoff again in the UPDATE: a case triage extended meanwhile is left alone.
        ended += case_end_span(
            case_id=case_id, reason="quiet", at=ended_at + gap, ended_before=cutoff
        )
    return ended


def case_end_span(
    *,
    case_id: int,
    reason: str,
    at: dt.datetime,
    announce: bool = True,
    ended_before: dt.datetime | None = None,
) -> bool:
    """End a case's span for good (quiet period, maximum length, reported); once only.

    True when this call ended it. Later activity of the camera opens a new case.
    """
    still_open = Case.objects.filter(pk=case_id, span_ended_at__isnull=True)
    if ended_before is not None:
        still_open = still_open.filter(ended_at__lt=ended_before)
    ended = still_open.update(span_ended_at=at, span_end_reason=reason, updated_at=timezone.now())
    if not ended:
        return False
    case = Case.objects.select_related("camera__site").get(pk=case_id)
    audit_record(actor=None, action="case.span_end", target=case, details={"reason": reason})
    if _is_unreported_violent_follow_up(case):
        # Triage held this report back while the activity went on (OpenCase.follows_reported):
        # the span is complete now, so the police get it, linked to the report before it.
        transaction.on_commit(
            lambda: signature(
                REPORT_CASE_TASK,
                kwargs={"case_id": case_id, "reason": "violent", "announce": "case.alert"},
            ).apply_async()
        )
    elif announce:
        broadcast_case(case, event="case.status")
    return True


def _is_unreported_violent_follow_up(case: Case) -> bool:
    return (
        case.band == Band.VIOLENT
        and case.follows_id is not None
        and not Case.objects.filter(pk=case.pk, police_report__isnull=False).exists()
        and Case.objects.filter(pk=case.follows_id, police_report__isnull=False).exists()
    )
