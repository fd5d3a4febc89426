"""What the live socket says about police reports, and to whom (access.policy)."""

from __future__ import annotations

from typing import Any

from access.policy import REPORTS, groups_for
from alerts.broadcast import broadcast
from portal.sitetime import site_time
from reports.models import PoliceReport


def report_payload(report: PoliceReport) -> dict[str, Any]:
    case = report.case
    site = case.camera.site
    # The report of the case this one follows up (a reported or over-long case that went on),
    # so the police list can show the link as the row arrives (issue #15).
    follows_report = (
        PoliceReport.objects.filter(case_id=case.follows_id).values_list("pk", flat=True).first()
        if case.follows_id
        else None
    )
    return {
        "id": report.pk,
        "case": report.case_id,
        "station": report.station_id,
        "status": report.status,
        "reason": report.reason,
        "reason_display": str(report.get_reason_display()),
        "sent_at": report.sent_at.isoformat(),
        # Formatted here, in the site's zone, exactly as the list renders it.
        "sent_at_display": site_time(report.sent_at, site.timezone),
        "site_name": site.name,
        "camera_name": case.camera.name,
        "band": case.band,
        "follows_report": follows_report,
    }


def broadcast_report(report: PoliceReport) -> None:
    broadcast(
        groups_for(report, REPORTS), {"type": "report.status", "report": report_payload(report)}
    )
