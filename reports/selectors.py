from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from access.policy import REPORTS, visible
from audit.models import AuditEvent
from reports.models import EvidencePackage, PoliceReport

if TYPE_CHECKING:
    from access.typing import AnyUser as User


def reports_visible_to(user: User) -> QuerySet[PoliceReport]:
    """Police reports: a liaison sees only those sent to their own station."""
    reports = PoliceReport.objects.select_related("case__camera__site", "station")
    return visible(reports, user, REPORTS)


def packages_visible_to(user: User) -> QuerySet[EvidencePackage]:
    return EvidencePackage.objects.filter(report__in=reports_visible_to(user).values("pk"))


def audit_events_visible_to(user: User) -> QuerySet[AuditEvent]:
    if getattr(user, "is_superuser", False) and user.is_active:
        return AuditEvent.objects.all()
    return AuditEvent.objects.none()


def report_reporter(report: PoliceReport) -> str | None:
    """The username of the staff member who triggered or confirmed the report, read from its
    `police_report.send` audit event; None when the system itself sent it (a violent window).

    Confidential (아동학대범죄의 처벌 등에 관한 특례법 제10조 제3항): callers show it only where
    access.policy.may_see_reporter allows. The report itself names the centre as reporter.
    """
    event = (
        AuditEvent.objects.filter(
            action="police_report.send",
            object_type=PoliceReport._meta.label,
            object_id=str(report.pk),
        )
        .exclude(actor_id=None)
        .order_by("id")
        .first()
    )
    return event.actor_label if event is not None else None
