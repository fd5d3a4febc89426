"""The centre admin's pages for parents' viewing requests and the director's access log.

Thin: parse, scope (the one audited 404), call one service, render. Times a user types are
read in the site's zone; every date shown is in it too.
"""

from __future__ import annotations

import zoneinfo
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.services import audit_record
from cameras.models import Site
from cameras.selectors import sites_managed_by
from portal.http import client_ip, scoped_or_404
from viewings import services
from viewings.access_log import access_entries, access_events, access_log_csv
from viewings.deadlines import days_left, is_overdue
from viewings.forms import (
    AccessLogFilter,
    AttachmentForm,
    CloseForm,
    ScheduleForm,
    TakeoutForm,
    ViewingRequestForm,
)
from viewings.models import TakeoutCopy, ViewingRequest
from viewings.selectors import viewing_requests_visible_to


def _site(request: HttpRequest, site_pk: int, action: str) -> Site:
    return scoped_or_404(sites_managed_by(request.user), site_pk, request=request, action=action)


def _deadline(viewing: ViewingRequest) -> dict[str, Any]:
    now = timezone.now()
    zone = viewing.site.timezone
    return {
        "overdue": viewing.status == ViewingRequest.Status.RECEIVED
        and is_overdue(due=viewing.reply_due, now=now, zone=zone),
        "days_left": days_left(due=viewing.reply_due, now=now, zone=zone),
    }


@require_http_methods(["GET", "POST"])
@login_required
def request_list(request: HttpRequest, site_pk: int) -> HttpResponse:
    site = _site(request, site_pk, "viewing_request.list")
    timezone.activate(zoneinfo.ZoneInfo(site.timezone))
    form = ViewingRequestForm(request.POST or None, request.FILES or None, site=site)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                viewing = services.viewing_request_create(
                    site=site,
                    camera=data["camera"],
                    group_or_room=data["group_or_room"],
                    child_label=data["child_label"],
                    guardian_name=data["guardian_name"],
                    guardian_contact=data["guardian_contact"],
                    starts_at=data["starts_at"],
                    ends_at=data["ends_at"],
                    reason=data["reason"],
                    actor=request.user,
                    ip_address=client_ip(request),
                )
                if data.get("attachment"):
                    services.viewing_attachment_add(
                        request=viewing,
                        upload=data["attachment"],
                        actor=request.user,
                        ip_address=client_ip(request),
                    )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(
                    request,
                    _("The request is recorded and its footage is held. Reply by %(due)s.")
                    % {"due": viewing.reply_due.isoformat()},
                )
                return redirect("viewing-detail", pk=viewing.pk)
    viewings = viewing_requests_visible_to(request.user).filter(site=site)
    rows = [(viewing, _deadline(viewing)) for viewing in viewings[:200]]
    return render(
        request,
        "viewings/request_list.html",
        {"site": site, "form": form, "rows": rows},
        status=status,
    )


def _detail_context(viewing: ViewingRequest, **forms: Any) -> dict[str, Any]:
    return {
        "site": viewing.site,
        "viewing": viewing,
        "deadline": _deadline(viewing),
        "segments": list(services.segments_of(viewing)[:500]),
        "attachments": viewing.attachments.all(),
        "copies": viewing.takeout_copies.all(),
        "schedule_form": forms.get("schedule_form") or ScheduleForm(),
        "takeout_form": forms.get("takeout_form")
        or TakeoutForm(initial={"child_x": 0.25, "child_y": 0.25, "child_w": 0.5, "child_h": 0.5}),
        "close_form": forms.get("close_form") or CloseForm(),
        "attachment_form": forms.get("attachment_form") or AttachmentForm(),
    }


def _viewing(request: HttpRequest, pk: int) -> ViewingRequest:
    return scoped_or_404(
        viewing_requests_visible_to(request.user),
        pk,
        request=request,
        action="viewing_request.view",
    )


@require_GET
@login_required
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    viewing = _viewing(request, pk)
    timezone.activate(zoneinfo.ZoneInfo(viewing.site.timezone))
    return render(request, "viewings/request_detail.html", _detail_context(viewing))


STEPS = {"schedule", "onsite", "takeout", "close", "report", "attach"}


@require_POST
@login_required
def request_step(request: HttpRequest, pk: int, step: str) -> HttpResponse:
    if step not in STEPS:
        raise Http404
    viewing = _viewing(request, pk)
    timezone.activate(zoneinfo.ZoneInfo(viewing.site.timezone))
    ip = client_ip(request)
    bound: dict[str, Any] = {}
    form: forms.Form
    try:
        if step == "schedule":
            form = bound["schedule_form"] = ScheduleForm(request.POST)
            if form.is_valid():
                services.viewing_schedule(
                    request=viewing,
                    appointment_at=form.cleaned_data["appointment_at"],
                    place=form.cleaned_data["appointment_place"],
                    actor=request.user,
                    ip_address=ip,
                )
                messages.success(request, _("The viewing is scheduled."))
                return redirect("viewing-detail", pk=viewing.pk)
        elif step == "onsite":
            count = services.viewing_record_onsite(
                request=viewing, actor=request.user, ip_address=ip
            )
            messages.success(
                request, _("On-site viewing of %(count)d windows is recorded.") % {"count": count}
            )
            return redirect("viewing-detail", pk=viewing.pk)
        elif step == "takeout":
            form = bound["takeout_form"] = TakeoutForm(request.POST)
            if form.is_valid():
                data = form.cleaned_data
                services.viewing_takeout_create(
                    request=viewing,
                    child_box=[data["child_x"], data["child_y"], data["child_w"], data["child_h"]],
                    recipient=data["recipient"],
                    actor=request.user,
                    ip_address=ip,
                )
                messages.success(request, _("The take-out copy is made."))
                return redirect("viewing-detail", pk=viewing.pk)
        elif step == "close":
            form = bound["close_form"] = CloseForm(request.POST)
            if form.is_valid():
                services.viewing_close(
                    request=viewing,
                    outcome=form.cleaned_data["outcome"],
                    note=form.cleaned_data["note"],
                    actor=request.user,
                    ip_address=ip,
                )
                messages.success(request, _("The request is closed."))
                return redirect("viewing-detail", pk=viewing.pk)
        elif step == "report":
            services.viewing_report_to_police(request=viewing, actor=request.user, ip_address=ip)
            messages.success(request, _("The footage is reported to the police."))
            return redirect("viewing-detail", pk=viewing.pk)
        elif step == "attach":
            form = bound["attachment_form"] = AttachmentForm(request.POST, request.FILES)
            if form.is_valid():
                services.viewing_attachment_add(
                    request=viewing,
                    upload=form.cleaned_data["attachment"],
                    actor=request.user,
                    ip_address=ip,
                )
                return redirect("viewing-detail", pk=viewing.pk)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    viewing.refresh_from_db()
    return render(
        request, "viewings/request_detail.html", _detail_context(viewing, **bound), status=400
    )


@require_GET
@login_required
def attachment_download(request: HttpRequest, pk: int, attachment_pk: int) -> FileResponse:
    viewing = _viewing(request, pk)
    attachment = viewing.attachments.filter(pk=attachment_pk).first()
    if attachment is None:
        raise Http404
    audit_record(
        actor=request.user,
        action="viewing_request.attachment_view",
        target=viewing,
        ip_address=client_ip(request),
        details={"attachment": attachment.pk},
    )
    response = FileResponse(
        attachment.file.open("rb"),
        content_type=attachment.content_type,
        as_attachment=True,
        filename=attachment.name,
    )
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@login_required
def copy_download(request: HttpRequest, pk: int) -> FileResponse:
    copy = scoped_or_404(
        TakeoutCopy.objects.filter(request__in=viewing_requests_visible_to(request.user)),
        pk,
        request=request,
        action="footage.copy.download",
    )
    audit_record(
        actor=request.user,
        action="footage.copy.download",
        target=copy,
        ip_address=client_ip(request),
        details={
            "viewing_request": copy.request_id,
            "camera": copy.request.camera_id,
            "sha256": copy.sha256,
            "why": "viewing_request",
        },
    )
    response = FileResponse(
        copy.file.open("rb"),
        content_type="video/mp4",
        as_attachment=True,
        filename=f"viewing-request-{copy.request_id}-copy-{copy.pk}.mp4",
    )
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@login_required
def access_log(request: HttpRequest, site_pk: int) -> HttpResponse:
    site = _site(request, site_pk, "access_log.view")
    timezone.activate(zoneinfo.ZoneInfo(site.timezone))
    form = AccessLogFilter(request.GET or None, site=site)
    filters: dict[str, Any] = {}
    if form.is_valid():
        data = form.cleaned_data
        camera = data.get("camera")
        filters = {
            "day_from": data.get("day_from"),
            "day_to": data.get("day_to"),
            "camera_id": camera.pk if camera is not None else None,
        }
    entries = access_entries(access_events(site=site, **filters), site=site)
    audit_record(
        actor=request.user,
        action="access_log.view",
        target=site,
        ip_address=client_ip(request),
        details={
            "format": request.GET.get("format", "html")[:10],
            **{k: str(v) for k, v in filters.items()},
        },
    )
    if request.GET.get("format") == "csv":
        response = HttpResponse(
            access_log_csv(entries, site=site), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="access-log-site-{site.pk}.csv"'
        return response
    printable = request.GET.get("format") == "print"
    # The printable page is the director's register, kept in Korean whatever the screen's
    # language (the jurisdiction's language: Korea is the only one so far).
    with translation.override("ko" if printable else translation.get_language()):
        return render(
            request,
            "viewings/access_log.html",
            {
                "site": site,
                "form": form,
                "entries": entries,
                "printable": printable,
                "query": request.GET.urlencode(),
            },
        )
