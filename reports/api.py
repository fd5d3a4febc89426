from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.http import client_ip
from reports.models import PoliceReport
from reports.selectors import reports_visible_to
from reports.serializers import PoliceReportOutput, PoliceReportStatusInput
from reports.services import police_report_update


class PoliceReportViewSet(viewsets.ReadOnlyModelViewSet[PoliceReport]):
    serializer_class = PoliceReportOutput

    def get_queryset(self) -> QuerySet[PoliceReport]:
        return reports_visible_to(self.request.user)

    @extend_schema(request=PoliceReportStatusInput, responses={200: PoliceReportOutput})
    @action(detail=True, methods=["post"])
    def status(
        self, request: Request, pk: str | None = None, format: str | None = None
    ) -> Response:
        # `format`: the router also serves the action as status.json/ and passes it.
        report = self.get_object()
        data = PoliceReportStatusInput(data=request.data)
        data.is_valid(raise_exception=True)
        report = police_report_update(
            report=report,
            to=data.validated_data["status"],
            note=data.validated_data["note"],
            actor=request.user,
            ip_address=client_ip(request),
        )
        return Response(PoliceReportOutput(report).data)
