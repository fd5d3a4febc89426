from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from abusewatch.roles import Role, role_of

LANDING_BY_ROLE = {
    Role.OPERATOR: "ops-home",
    Role.EXPERT: "review-queue",
    Role.LIAISON: "report-list",
    Role.CENTRE_ADMIN: "site-list",
}


@login_required
def home(request: HttpRequest) -> HttpResponse:
    role = role_of(request.user)
    if role in LANDING_BY_ROLE:
        return redirect(LANDING_BY_ROLE[role])
    return render(request, "no_role.html", status=403)


@login_required
def ops_home(request: HttpRequest) -> HttpResponse:
    if role_of(request.user) != Role.OPERATOR:
        return render(request, "no_role.html", status=403)
    from cameras.models import Camera, Site
    from detection.models import Case, ModelVersion

    return render(
        request,
        "ops_home.html",
        {
            "site_count": Site.objects.count(),
            "camera_count": Camera.objects.count(),
            "open_case_count": Case.objects.exclude(status=Case.Status.CLOSED).count(),
            "active_model": ModelVersion.objects.filter(is_active=True).first(),
        },
    )


@login_required
def case_open(request: HttpRequest, pk: int) -> HttpResponse:
    """Where a live alert's "open case" link lands: the page this user works the case on."""
    from detection.models import Band
    from detection.selectors import cases_visible_to
    from reports.selectors import reports_visible_to
    from reviews.selectors import case_for_review

    case = get_object_or_404(cases_visible_to(request.user), pk=pk)
    report = reports_visible_to(request.user).filter(case=case).first()
    if report is not None:
        return redirect("report-detail", pk=report.pk)
    if case.band == Band.UNCERTAIN and case_for_review(request.user, case.pk) is not None:
        return redirect("review-case", pk=case.pk)
    user = request.user
    if user.is_superuser or (
        user.pk is not None and case.camera.site.admins.filter(pk=user.pk).exists()
    ):
        return redirect("camera-detail", pk=case.camera_id)
    raise Http404("No page for this case.")


class MeOutput(serializers.Serializer[dict[str, object]]):
    id = serializers.IntegerField()
    username = serializers.CharField()
    role = serializers.CharField()


class MeView(APIView):
    @extend_schema(responses=MeOutput)
    def get(self, request: Request) -> Response:
        user = request.user
        return Response(
            {"id": user.pk, "username": user.get_username(), "role": str(role_of(user))}
        )
