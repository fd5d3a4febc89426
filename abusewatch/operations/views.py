from __future__ import annotations

import hmac

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from abusewatch.operations.health import health
from abusewatch.operations.metrics import registry
from abusewatch.operations.redaction import (
    WorkingCopyUnavailable,
    parse_exempt_regions,
    working_copy_for,
)
from abusewatch.roles import Role, role_of
from detection.selectors import segments_visible_to
from reports.models import AuditEvent
from reports.services import audit_record, client_ip


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
@require_GET
def working_copy(request: HttpRequest, pk: int) -> HttpResponse | FileResponse:
    """A segment's working copy, faces pixelated unless an expert turns that off.

    Query: `blur=0` (experts and operators only), `exempt=x,y,w,h;...` regions (fractions of
    the frame) whose faces stay visible, for the faces of the case.
    """
    ip = client_ip(request)
    segment = segments_visible_to(request.user).filter(pk=pk).first()
    if segment is None:
        audit_record(
            actor=request.user,
            action="working_copy.view",
            ip_address=ip,
            outcome=AuditEvent.Outcome.DENIED,
            details={"segment": pk},
        )
        raise Http404("No such segment.")
    blur_raw = request.GET.get("blur", "1")
    if blur_raw not in {"0", "1"}:
        return _bad_request("blur must be 0 or 1.")
    blur = blur_raw == "1"
    exempt_raw = request.GET.get("exempt", "")
    if len(exempt_raw) > 400:
        return _bad_request("exempt is too long.")
    try:
        exempt = parse_exempt_regions(exempt_raw)
    except ValidationError as exc:
        return _bad_request(" ".join(exc.messages))
    if not blur and role_of(request.user) not in {Role.EXPERT, Role.OPERATOR}:
        audit_record(
            actor=request.user,
            action="working_copy.blur_off",
            target=segment,
            ip_address=ip,
            outcome=AuditEvent.Outcome.DENIED,
        )
        return HttpResponse(
            "Only experts may view footage without face blur.\n",
            status=403,
            content_type="text/plain",
        )
    try:
        copy = working_copy_for(segment, blur=blur, exempt=exempt, actor=request.user)
    except WorkingCopyUnavailable as exc:
        raise Http404(str(exc)) from None
    if not blur:
        audit_record(
            actor=request.user, action="working_copy.blur_off", target=segment, ip_address=ip
        )
    audit_record(
        actor=request.user,
        action="working_copy.view",
        target=copy,
        ip_address=ip,
        details={"segment": segment.pk, "blur": blur, "exempt": [list(r) for r in exempt]},
    )
    response = FileResponse(copy.file.open("rb"), content_type="video/mp4")
    response["Cache-Control"] = "private, no-store"
    response["X-Content-SHA256"] = copy.sha256
    return response


def _bad_request(message: str) -> HttpResponse:
    return HttpResponse(message + "\n", status=400, content_type="text/plain")
