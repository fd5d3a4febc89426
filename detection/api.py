from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from audit.services import audit_record
from detection.models import Band, Case, Segment
from detection.selectors import cases_visible_to, segments_visible_to
from detection.serializers import CaseDetailOutput, CaseOutput, SegmentOutput
from portal.http import client_ip, scoped_or_404


class CaseViewSet(viewsets.ReadOnlyModelViewSet[Case]):
    def get_serializer_class(self) -> type[CaseOutput]:
        return CaseDetailOutput if self.action == "retrieve" else CaseOutput

    def get_queryset(self) -> QuerySet[Case]:
        cases = cases_visible_to(self.request.user)
        params = self.request.query_params
        if (band := params.get("band")) is not None:
            if band not in Band.values:
                raise serializers.ValidationError({"band": [f"Must be one of {Band.values}."]})
            cases = cases.filter(band=band)
        if (case_status := params.get("status")) is not None:
            if case_status not in Case.Status.values:
                raise serializers.ValidationError(
                    {"status": [f"Must be one of {Case.Status.values}."]}
                )
            cases = cases.filter(status=case_status)
        if self.action == "retrieve":
            cases = cases.prefetch_related("segments")
        return cases

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """A case's detail, audited like the portals' case pages, refusals included."""
        try:
            case = self.get_object()
        except Http404:
            audit_record(
                actor=request.user,
                action="case.view",
                ip_address=client_ip(request),
                outcome="denied",
                details={"case": str(kwargs.get("pk", ""))[:40], "via": "api"},
            )
            raise
        audit_record(
            actor=request.user,
            action="case.view",
            target=case,
            ip_address=client_ip(request),
            details={"via": "api"},
        )
        return Response(self.get_serializer(case).data)


class SegmentViewSet(viewsets.ReadOnlyModelViewSet[Segment]):
    serializer_class = SegmentOutput

    def get_queryset(self) -> QuerySet[Segment]:
        return segments_visible_to(self.request.user)


@extend_schema(responses={(200, "video/mp4"): OpenApiTypes.BINARY})
@api_view(["GET"])
def serve_segment_file(request: Request, pk: int, kind: str) -> FileResponse:
    """Stream a segment's footage to a user allowed to see it, and audit the access."""
    if kind not in {"original", "preview"}:
        raise Http404
    segment = scoped_or_404(
        segments_visible_to(request.user),
        pk,
        request=request,
        action=f"segment.{kind}.view",
        details={"segment": pk},
        message="No such segment.",
    )
    field = segment.original if kind == "original" else segment.preview
    if not field:
        raise Http404("This segment has no such file.")
    try:
        handle = field.open("rb")
    except FileNotFoundError:
        raise Http404("The footage has been erased.") from None
    audit_record(
        actor=request.user,
        action=f"segment.{kind}.view",
        target=segment,
        ip_address=client_ip(request),
    )
    response = FileResponse(handle, content_type="video/mp4")
    response["Cache-Control"] = "private, no-store"
    return response
