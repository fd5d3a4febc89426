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
