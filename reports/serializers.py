from __future__ import annotations

from typing import Any

from rest_framework import serializers

from detection.serializers import CaseOutput
from reports.models import PoliceReport


class PoliceReportOutput(serializers.ModelSerializer[PoliceReport]):
    case = CaseOutput(read_only=True)
    station_name = serializers.CharField(source="station.name")

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
        ]


class PoliceReportStatusInput(serializers.Serializer[dict[str, Any]]):
    status = serializers.ChoiceField(
        choices=[
            PoliceReport.Status.ACKNOWLEDGED,
            PoliceReport.Status.DISPATCHED,
            PoliceReport.Status.CLOSED,
        ]
    )
    note = serializers.CharField(max_length=5000, allow_blank=True, required=False, default="")
