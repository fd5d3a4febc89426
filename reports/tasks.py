"""Celery tasks of reports: each takes ids, calls one service, is idempotent."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from detection.inference import working_copies_started
from reports.services import case_report, case_working_copies_prepare


@shared_task(
    name="reports.report_case",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def report_case(
    case_id: int,
    reason: str,
    actor_id: int | None = None,
    ip_address: str | None = None,
    announce: str = "case.status",
) -> int | None:
    """A case that must reach the police (a violent window, an expert's escalation): report it.

    Queued by name, on commit, by detection and reviews. Idempotent: a redelivered task finds
    the report sent and the case reported.
    """
    report = case_report(
        case_id=case_id, reason=reason, actor_id=actor_id, ip_address=ip_address, announce=announce
    )
    return report.pk if report is not None else None


@shared_task(name="reports.make_working_copies", acks_late=True)
def make_working_copies(case_id: int) -> tuple[int, int]:
    """Blurred working copies of a reported case's footage, ahead of the first viewer.

    Idempotent: each segment's copy is made once; a redelivered task finds them made. Cleared
    first, the case's queued mark lets a window attached from now on queue the next task.
    """
    working_copies_started(case_id)
    return case_working_copies_prepare(case_id=case_id)
