from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from access.policy import Role, may_see_reporter, may_view_unblurred, role_of
from audit.models import AuditEvent
from audit.services import audit_record
from detection.selectors import segments_visible_to
from portal.http import client_ip, scoped_or_404
from portal.timeline import timeline_bars
from reports.forms import ReportStatusForm
from reports.links import evidence_link, read_evidence_token
from reports.models import PoliceReport
from reports.redaction import WorkingCopyUnavailable, working_copy_for
from reports.selectors import packages_visible_to, report_reporter, reports_visible_to
from reports.services import evidence_package_create, police_report_update
from reports.signing import key_fingerprint, public_key_pem, signing_key
from reviews.selectors import case_footage_seconds, case_timeline

POLICE_ROLES = (Role.LIAISON, Role.OPERATOR)


def _report_or_404(request: HttpRequest, pk: int, action: str) -> PoliceReport:
    return scoped_or_404(
        reports_visible_to(request.user),
        pk,
        request=request,
        action=action,
        details={"report": pk},
        message="No such report.",
    )


@require_GET
@login_required
def report_list(request: HttpRequest) -> HttpResponse:
    if role_of(request.user) not in POLICE_ROLES:
        audit_record(
            actor=request.user,
            action="report.list",
            ip_address=client_ip(request),
            outcome="denied",
        )
        return render(request, "no_role.html", status=403)
    reports = reports_visible_to(request.user).select_related("case__camera__site")[:200]
    return render(request, "reports/report_list.html", {"reports": reports})


def _signing_fingerprint() -> str | None:
    """The fingerprint a liaison checks packages against away from this server.

    It has to come from here, not from the package: a forger who re-signs a package puts their
    own key, and its fingerprint, inside it.
    """
    try:
        return key_fingerprint(public_key_pem(signing_key()))
    except ImproperlyConfigured:
        return None


def _render_detail(
    request: HttpRequest,
    report: PoliceReport,
    form: ReportStatusForm | None = None,
    status: int = 200,
) -> HttpResponse:
    now = timezone.now()
    packages = [
        {
            "package": package,
            "expired": package.expires_at <= now,
            "url": evidence_link(package, request.user) if package.expires_at > now else None,
        }
        for package in packages_visible_to(request.user).filter(report=report)[:10]
    ]
    case = report.case
    # The same player and banded timeline as the expert's page (issue #15: this page was a
    # flat list of some 200 links with no player).
    timeline = case_timeline(case)
    bars = timeline_bars((w.start, w.end, w.score, w.band, w.segment, w.in_case) for w in timeline)
    return render(
        request,
        "reports/report_detail.html",
        {
            "report": report,
            "case": case,
            "timeline": [window.__dict__ for window in timeline],
            "bars": bars,
            "footage_seconds": case_footage_seconds(case),
            "segments": case.segments.order_by("started_at"),
            "decisions": case.decisions.select_related("expert"),
            "packages": packages,
            "signing_fingerprint": _signing_fingerprint(),
            "reporting_staff": report_reporter(report)
            if may_see_reporter(request.user, station_id=report.station_id)
            else None,
            "form": form or ReportStatusForm(report=report),
        },
        status=status,
    )


@require_GET
@login_required
def report_detail(request: HttpRequest, pk: int) -> HttpResponse:
    report = _report_or_404(request, pk, "report.view")
    audit_record(
        actor=request.user, action="report.view", target=report, ip_address=client_ip(request)
    )
    return _render_detail(request, report)


@require_POST
@login_required
def report_status(request: HttpRequest, pk: int) -> HttpResponse:
    report = _report_or_404(request, pk, "police_report.status")
    form = ReportStatusForm(request.POST, report=report)
    if not form.is_valid():
        return _render_detail(request, report, form, status=400)
    try:
        police_report_update(
            report=report,
            to=form.cleaned_data["status"],
            note=form.cleaned_data["note"],
            actor=request.user,
            ip_address=client_ip(request),
        )
    except ValidationError as exc:
        form.add_error(None, exc.messages)
        return _render_detail(request, report, form, status=400)
    messages.success(request, _("The report's status is updated."))
    return redirect("report-detail", pk=report.pk)


@require_POST
@login_required
def report_evidence_create(request: HttpRequest, pk: int) -> HttpResponse:
    report = _report_or_404(request, pk, "evidence_package.create")
    evidence_package_create(report=report, actor=request.user, ip_address=client_ip(request))
    messages.success(
        request, _("The evidence package is ready. Its link is yours alone and expires.")
    )
    return redirect("report-detail", pk=report.pk)


@require_GET
@login_required
def evidence_download(request: HttpRequest, token: str) -> FileResponse:
    claim = read_evidence_token(token)
    package = None
    reason = "bad or expired link"
    if claim is not None:
        if claim.user != request.user.pk:
            reason = "link issued to another user"
        else:
            package = packages_visible_to(request.user).filter(pk=claim.package).first()
            if package is None:
                reason = "package not visible to this user"
            elif package.expires_at <= timezone.now():
                reason = "package expired"
                package = None
    if package is None:
        audit_record(
            actor=request.user,
            action="evidence_package.download",
            ip_address=client_ip(request),
            outcome="denied",
            details={"reason": reason, "package": claim.package if claim else None},
        )
        raise Http404("This link is not valid for you, or it has expired.")
    try:
        handle = package.file.open("rb")
    except FileNotFoundError:
        raise Http404("The package file is gone.") from None
    audit_record(
        actor=request.user,
        action="evidence_package.download",
        target=package,
        ip_address=client_ip(request),
        details={"report": package.report_id, "sha256": package.sha256},
    )
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=f"evidence-report-{package.report_id}-{package.pk}.zip",
        content_type="application/zip",
    )
    response["Cache-Control"] = "private, no-store"
    return response


@never_cache
@require_GET
def working_copy(request: HttpRequest, pk: int) -> HttpResponse | FileResponse:
    """A segment's working copy, faces pixelated unless an expert turns that off.

    Query: `blur=0` (experts and operators only, audited). There is one copy per segment and
    policy, made once: no request parameter may shape (and so multiply) the transcodes. An
    `exempt=` parameter once made and stored a new 5-second transcode for every distinct value,
    and all of them went into later evidence packages (issue #16).
    """
    ip = client_ip(request)
    segment = scoped_or_404(
        segments_visible_to(request.user),
        pk,
        request=request,
        action="working_copy.view",
        details={"segment": pk},
        message="No such segment.",
    )
    blur_raw = request.GET.get("blur", "1")
    if blur_raw not in {"0", "1"}:
        return _bad_request("blur must be 0 or 1.")
    blur = blur_raw == "1"
    if "exempt" in request.GET:
        return _bad_request(
            "exempt is not accepted: each segment has one working copy per policy "
            "(faces pixelated, or the original for those allowed to see it)."
        )
    if not blur and not may_view_unblurred(request.user):
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
        copy = working_copy_for(segment, blur=blur, actor=request.user)
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
        details={"segment": segment.pk, "blur": blur},
    )
    response = FileResponse(copy.file.open("rb"), content_type="video/mp4")
    response["Cache-Control"] = "private, no-store"
    response["X-Content-SHA256"] = copy.sha256
    return response


def _bad_request(message: str) -> HttpResponse:
    return HttpResponse(message + "\n", status=400, content_type="text/plain")
