"""Writes of reports: police reports, their status, evidence packages."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

from celery import signature
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from audit.hashing import file_sha256
from audit.services import audit_record
from audit.typing import Actor
from detection.announce import broadcast_case
from detection.models import Band, Case
from detection.services import case_end_span, case_transition
from reports.announce import broadcast_report
from reports.evidence import build_package
from reports.models import EvidencePackage, PoliceReport
from reports.redaction import case_working_copies_make

# Queued by name: tasks import this module.
MAKE_WORKING_COPIES_TASK = "reports.make_working_copies"


def case_working_copies_prepare(*, case_id: int) -> tuple[int, int]:
    """Make the blurred working copies of a case's footage (the task's body); idempotent."""
    case = Case.objects.filter(pk=case_id).first()
    if case is None:
        return (0, 0)
    return case_working_copies_make(case)


@transaction.atomic
def police_report_send(*, case: Case, reason: str, actor: Actor = None) -> PoliceReport:
    """Report a case to its site's police station, once: a second call returns the first report."""
    locked_case = Case.objects.select_for_update().select_related("camera__site").get(pk=case.pk)
    existing = PoliceReport.objects.filter(case=locked_case).first()
    if existing is not None:
        return existing
    report = PoliceReport.objects.create(
        case=locked_case,
        station_id=locked_case.camera.site.police_station_id,
        reason=reason,
        sent_at=timezone.now(),
    )
    # Blurred working copies of its footage, ahead of time: experts and police watch them, and
    # the package carries them.
    case_id = locked_case.pk
    if settings.WORKING_COPIES_AHEAD:
        transaction.on_commit(
            lambda: signature(MAKE_WORKING_COPIES_TASK, kwargs={"case_id": case_id}).apply_async()
        )
    # What the police received must not change under them: the span is frozen from now on,
    # and later activity of the camera opens a follow-up case linked to this one.
    case_end_span(
        case_id=locked_case.pk,
        reason=Case.SpanEnd.REPORTED,
        at=report.sent_at,
        announce=False,
    )
    # The actor of this event is the staff member who triggered or confirmed the report: the
    # audit chain is where that confidential fact lives (reports.selectors.report_reporter).
    audit_record(
        actor=actor,
        action="police_report.send",
        target=report,
        details={"case": locked_case.pk, "station": report.station_id, "reason": reason},
    )
    return report


@transaction.atomic
def police_report_set_status(
    *,
    report: PoliceReport,
    to: str,
    actor: Actor,
    note: str = "",
    ip_address: str | None = None,
) -> PoliceReport:
    locked = PoliceReport.objects.select_for_update().get(pk=report.pk)
    if to not in PoliceReport.TRANSITIONS[locked.status]:
        raise ValidationError({"status": f"A report that is {locked.status} cannot become {to}."})
    previous = locked.status
    locked.status = to
    stamp_field = {
        PoliceReport.Status.ACKNOWLEDGED: "acknowledged_at",
        PoliceReport.Status.DISPATCHED: "dispatched_at",
        PoliceReport.Status.CLOSED: "closed_at",
    }[PoliceReport.Status(to)]
    setattr(locked, stamp_field, timezone.now())
    if isinstance(actor, User):
        locked.handled_by = actor
    if note:
        locked.note = note
    locked.full_clean()
    locked.save()
    audit_record(
        actor=actor,
        action="police_report.status",
        target=locked,
        ip_address=ip_address,
        details={"from": previous, "to": to},
    )
    return locked


@transaction.atomic
def police_report_update(
    *,
    report: PoliceReport,
    to: str,
    actor: Actor,
    note: str = "",
    ip_address: str | None = None,
) -> PoliceReport:
    """A liaison's status update: move the report, close its case when the report closes,
    and tell every open portal."""
    updated = police_report_set_status(
        report=report, to=to, actor=actor, note=note, ip_address=ip_address
    )
    case = updated.case
    if to == PoliceReport.Status.CLOSED and case.can_move_to(Case.Status.CLOSED):
        case_transition(case=case, to=Case.Status.CLOSED, actor=actor, ip_address=ip_address)
        broadcast_case(case, event="case.status")
    broadcast_report(updated)
    return updated


def case_report(
    *,
    case_id: int,
    reason: str,
    actor_id: int | None = None,
    ip_address: str | None = None,
    announce: str = "case.status",
) -> PoliceReport | None:
    """React to a case that must reach the police: send its report, mark it reported, tell
    every open portal. None when the case is gone or no longer needs reporting."""
    actor = User.objects.filter(pk=actor_id).first() if actor_id is not None else None
    with transaction.atomic():
        case = Case.objects.select_for_update().filter(pk=case_id).first()
        must_report = case is not None and (
            case.band == Band.VIOLENT or case.status == Case.Status.ESCALATED
        )
        if case is None or not must_report:
            return None
        report = police_report_send(case=case, reason=reason, actor=actor)
        case.refresh_from_db()
        if case.can_move_to(Case.Status.REPORTED):
            details: dict[str, Any] = (
                {"report": report.pk}
                if reason == PoliceReport.Reason.EXPERT
                else {"reason": "violent window", "peak_score": case.peak_score}
            )
            case_transition(
                case=case,
                to=Case.Status.REPORTED,
                actor=actor,
                ip_address=ip_address,
                details=details,
            )
        # Every new report reaches the station's list live, whatever sent it (issue #15: a
        # violent case's report arrived as a case message only, and no row appeared).
        broadcast_report(report)
        broadcast_case(case, event=announce)
    return report


def evidence_package_create(
    *, report: PoliceReport, actor: Actor, ip_address: str | None = None
) -> EvidencePackage:
    """Build and store the evidence package of a report; its download links expire.

    The package carries each segment's blurred working copy: made ahead of time when the case
    was reported, and here at the latest for any still missing.
    """
    if settings.WORKING_COPIES_AHEAD:
        case_working_copies_make(report.case, actor=actor)
    with tempfile.TemporaryDirectory(prefix="evidence-") as tmp:
        path = Path(tmp) / f"evidence-report-{report.pk}.zip"
        with path.open("wb") as handle:
            manifest = build_package(report, handle)
        digest = file_sha256(path)
        with transaction.atomic():
            package = EvidencePackage(
                report=report,
                sha256=digest,
                size=path.stat().st_size,
                created_by=actor if isinstance(actor, User) else None,
                expires_at=timezone.now() + dt.timedelta(minutes=settings.EVIDENCE_LINK_MINUTES),
            )
            stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
            with path.open("rb") as handle:
                package.file.save(
                    f"report-{report.pk}-{stamp}-{digest[:12]}.zip", File(handle), save=False
                )
            package.full_clean()
            package.save()
            audit_record(
                actor=actor,
                action="evidence_package.create",
                target=package,
                ip_address=ip_address,
                details={
                    "report": report.pk,
                    "case": report.case_id,
                    "sha256": digest,
                    "files": len(manifest["files"]),
                },
            )
    return package
