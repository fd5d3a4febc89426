from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import QueryDict
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from cameras import services
from cameras.models import Camera, Site
from cameras.selectors import cameras_visible_to, sites_managed_by, sites_visible_to
from cameras.serializers import (
    CameraInput,
    CameraOutput,
    SiteOutput,
    SiteRetentionInput,
    UploadTokenOutput,
)
from detection.model_versions import model_version_active
from portal.http import client_ip

SITE_ID = re.compile(r"[0-9]{1,18}")


class SiteViewSet(viewsets.ReadOnlyModelViewSet[Site]):
    serializer_class = SiteOutput

    def get_queryset(self) -> QuerySet[Site]:
        return sites_visible_to(self.request.user)

    @extend_schema(request=SiteRetentionInput, responses={200: SiteOutput})
    @action(detail=True, methods=["post"], url_path="retention")
    def retention(self, request: Request, pk: str | None = None) -> Response:
        """Set the site's retention; below its law's minimum it is refused with the reason."""
        site = self.get_object()
        data = SiteRetentionInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            site = services.site_set_retention(
                site=site,
                retention_hours=data.validated_data["retention_hours"],
                actor=request.user,
                ip_address=client_ip(request),
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return Response(SiteOutput(site).data)


class CameraViewSet(viewsets.ModelViewSet[Camera]):
    """Cameras of the user's sites. Writes go through `cameras.services`."""

    serializer_class = CameraOutput
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Camera]:
        cameras = cameras_visible_to(self.request.user)
        site = self.request.query_params.get("site")
        if site is not None:
            # ASCII digits only ("²".isdigit() is true) and within a database id's range.
            if not SITE_ID.fullmatch(site):
                raise serializers.ValidationError({"site": ["Must be a site id."]})
            cameras = cameras.filter(site_id=int(site))
        return cameras

    def _managed_site(self, site_id: int) -> Site:
        site = sites_managed_by(self.request.user).filter(pk=site_id).first()
        if site is None:
            # Same answer for "no such site" and "not yours": ids reveal nothing.
            raise serializers.ValidationError({"site": ["No such site."]})
        return site

    @extend_schema(request=CameraInput, responses={201: CameraOutput})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = CameraInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        site = self._managed_site(fields.pop("site"))
        camera = services.camera_create(
            model_low_threshold=model_version_active().low_threshold,
            site=site,
            actor=request.user,
            ip_address=client_ip(request),
            **fields,
        )
        return Response(CameraOutput(camera).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CameraInput, responses={200: CameraOutput})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        camera = self.get_object()
        current = {name: getattr(camera, name) for name in services.CAMERA_EDITABLE_FIELDS}
        incoming = request.data.dict() if isinstance(request.data, QueryDict) else request.data
        if not isinstance(incoming, dict):
            raise serializers.ValidationError({"detail": ["Expected a JSON object."]})
        data = CameraInput(data={**current, "site": camera.site_id, **incoming})
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        if fields.pop("site") != camera.site_id:
            raise serializers.ValidationError({"site": ["A camera cannot move to another site."]})
        camera = services.camera_update(
            model_low_threshold=model_version_active().low_threshold,
            camera=camera,
            actor=request.user,
            ip_address=client_ip(request),
            **fields,
        )
        return Response(CameraOutput(camera).data)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.camera_delete(
            camera=self.get_object(), actor=request.user, ip_address=client_ip(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={201: UploadTokenOutput})
    @action(detail=True, methods=["post"], url_path="upload-token")
    def upload_token(
        self, request: Request, pk: str | None = None, format: str | None = None
    ) -> Response:
        # `format`: the router also serves the action as upload-token.json/ and passes it.
        camera = self.get_object()
        token = services.camera_issue_upload_token(
            camera=camera, actor=request.user, ip_address=client_ip(request)
        )
        return Response(
            {"camera": camera.pk, "upload_token": token}, status=status.HTTP_201_CREATED
        )
