"""What the live socket says about police reports, and to whom (access.policy)."""

from __future__ import annotations

from typing import Any

from access.policy import REPORTS, groups_for
from alerts.broadcast import broadcast
from reports.models import PoliceReport


def report_payload(report: PoliceReport) -> dict[str, Any]:
    return {
        "id": report.pk,
        "case": report.case_id,
        "station": report.station_id,
        "status": report.status,
        "reason": report.reason,
        "sent_at": report.sent_at.isoformat(),
    }


def broadcast_report(report: PoliceReport) -> None:
    broadcast(
        groups_for(report, REPORTS), {"type": "report.status", "report": report_payload(report)}
    )
