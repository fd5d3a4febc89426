from __future__ import annotations

from typing import Any

from rest_framework import serializers

from access.policy import may_see_reporter
from detection.serializers import CaseOutput
from reports.models import PoliceReport
from reports.selectors import report_reporter


class PoliceReportOutput(serializers.ModelSerializer[PoliceReport]):
    case = CaseOutput(read_only=True)
    station_name = serializers.CharField(source="station.name")
    # The centre is the reporter; the staff member who triggered or confirmed the report is
    # named only to the police who received it and to operators (access.policy).
    reporter_centre = serializers.CharField(source="case.camera.site.name", read_only=True)
    reported_by = serializers.SerializerMethodField()

    class Meta:
        model = PoliceReport
        fields = [
            "id",
            "case",
            "station",
            "station_name",
            "reason",
            "status",
            "sent_at",
            "acknowledged_at",
            "dispatched_at",
            "closed_at",
            "note",
            "reporter_centre",
            "reported_by",
        ]

    def get_reported_by(self, report: PoliceReport) -> str | None:
        request = self.context.get("request")
        if request is None or not may_see_reporter(request.user, station_id=report.station_id):
            return None
        return report_reporter(report)


class PoliceReportStatusInput(serializers.Serializer[dict[str, Any]]):
    status = serializers.ChoiceField(
        choices=[
            PoliceReport.Status.ACKNOWLEDGED,
            PoliceReport.Status.DISPATCHED,
            PoliceReport.Status.CLOSED,
        ]
    )
    note = serializers.CharField(max_length=5000, allow_blank=True, required=False, default="")
