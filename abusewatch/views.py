from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from abusewatch.auth_views import LoginView
from abusewatch.health import health
from abusewatch.metrics import registry
from access.policy import Role, role_of
from audit.services import audit_record
from cameras.models import Camera, Site
from cameras.selectors import cameras_visible_to
from detection.models import Band, Case, ModelVersion
from detection.selectors import cases_visible_to
from detection.storage import storage_plan
from portal.http import client_ip, scoped_or_404
from portal.timeline import timeline_bars
from reports.selectors import reports_visible_to
from reviews.selectors import case_footage_seconds, case_for_review, case_timeline

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
    return render(
        request,
        "ops_home.html",
        {
            "site_count": Site.objects.count(),
            "camera_count": Camera.objects.count(),
            "open_case_count": Case.objects.exclude(status=Case.Status.CLOSED).count(),
            "active_model": ModelVersion.objects.filter(is_active=True).first(),
            "storage": storage_plan(),
        },
    )


@login_required
def case_open(request: HttpRequest, pk: int) -> HttpResponse:
    """Where a live alert's "open case" link lands: the page this user works the case on."""
    case = get_object_or_404(cases_visible_to(request.user), pk=pk)
    report = reports_visible_to(request.user).filter(case=case).first()
    if report is not None:
        return redirect("report-detail", pk=report.pk)
    if case.band == Band.UNCERTAIN and case_for_review(request.user, case.pk) is not None:
        return redirect("review-case", pk=case.pk)
    if cameras_visible_to(request.user).filter(pk=case.camera_id).exists():
        return redirect("site-case", pk=case.pk)
    raise Http404("No page for this case.")


@login_required
def site_case(request: HttpRequest, pk: int) -> HttpResponse:
    """A case as its centre's admins see it: what happened, where it stands, the blurred footage.

    Issue #15: an admin's "open case" landed on the camera's day, with no page for the case.
    Who reviewed it is not shown here; its status and whether it reached the police are.
    """
    case = scoped_or_404(
        cases_visible_to(request.user).select_related("camera__site"),
        pk,
        request=request,
        action="case.view",
        details={"case": pk},
        message="No such case.",
    )
    if not cameras_visible_to(request.user).filter(pk=case.camera_id).exists():
        raise Http404("No such case.")
    audit_record(actor=request.user, action="case.view", target=case, ip_address=client_ip(request))
    timeline = case_timeline(case)
    bars = timeline_bars((w.start, w.end, w.score, w.band, w.segment, w.in_case) for w in timeline)
    return render(
        request,
        "cameras/case_detail.html",
        {
            "case": case,
            "timeline": [window.__dict__ for window in timeline],
            "bars": bars,
            "footage_seconds": case_footage_seconds(case),
            "segments": case.segments.all(),
            "reported": reports_visible_to(request.user).filter(case=case).exists()
            or hasattr(case, "police_report"),
            "follow_ups": case.follow_ups.order_by("started_at"),
        },
    )


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


def _bearer_token_ok(request: HttpRequest) -> bool:
    expected = str(settings.METRICS_TOKEN or "")
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if not expected or scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape: an operator's session or the METRICS_TOKEN bearer token."""
    if not (_bearer_token_ok(request) or role_of(request.user) == Role.OPERATOR):
        if request.user.is_authenticated or "Authorization" in request.headers:
            return HttpResponse("Forbidden.\n", status=403, content_type="text/plain")
        response = HttpResponse("Authentication required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and orchestrators: open to all, it says only up or down per part."""
    result = health()
    return JsonResponse(result, status=200 if result["status"] == "ok" else 503)


@never_cache
def admin_login(request: HttpRequest) -> HttpResponseBase:
    """The operations admin's sign-in; a signed-in non-operator gets a clear 403 page.

    Django's admin sends every signed-in user who is not staff to its login page, and a
    sign-in page sends a signed-in user on to `next`: the two bounced a centre admin, an
    expert or a police officer between /admin/ and /admin/login/ for ever (issue #15).
    """
    user = request.user
    if user.is_authenticated and not (user.is_active and user.is_staff):
        return render(request, "admin_forbidden.html", status=403)
    return LoginView.as_view()(request)
