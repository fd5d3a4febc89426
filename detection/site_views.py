from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from access.policy import Role, role_of
from cameras.forms import CameraForm, DayForm, SiteRetentionForm
from cameras.models import Camera, Site
from cameras.probe import ProbeFailure, ProbeResult, probe_source
from cameras.selectors import cameras_visible_to, sites_managed_by, sites_visible_to
from cameras.services import camera_create, camera_update, site_set_retention
from cameras.sources import source_allowed_for
from detection.capacity import capacity_notes
from detection.model_versions import model_version_active
from detection.models import Band, ModelVersion
from detection.selectors import cases_visible_to, peak_scores_by_bucket
from detection.storage import storage_plan
from detection.triage import thresholds_for
from portal.http import client_ip
from portal.sitetime import site_time
from portal.timeline import timeline_bars

View = Callable[..., HttpResponse]
# A day of 2-second windows is 43,200 bars; the day view draws one bar per bucket instead,
# its height the highest score in the bucket.
DAY_BUCKET_SECONDS = 300


def site_admin_required(view: View) -> View:
    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if role_of(request.user) not in (Role.CENTRE_ADMIN, Role.OPERATOR) and not (
            sites_visible_to(request.user).exists()
        ):
            return render(request, "no_role.html", status=403)
        return view(request, *args, **kwargs)

    return wrapped


@require_GET
@site_admin_required
def site_list(request: HttpRequest) -> HttpResponse:
    sites = sites_visible_to(request.user).annotate(
        # A camera switched off on purpose is not an offline one (issue #15): counted apart.
        camera_count=Count("cameras", filter=Q(cameras__enabled=True), distinct=True),
        online_count=Count(
            "cameras", filter=Q(cameras__status="online", cameras__enabled=True), distinct=True
        ),
        disabled_count=Count("cameras", filter=Q(cameras__enabled=False), distinct=True),
    )
    return render(request, "cameras/site_list.html", {"sites": sites})


@require_GET
@login_required
def site_detail(request: HttpRequest, pk: int) -> HttpResponse:
    site = get_object_or_404(sites_visible_to(request.user), pk=pk)
    cameras = cameras_visible_to(request.user).filter(site=site)
    cases = (
        cases_visible_to(request.user)
        .filter(camera__site=site)
        .select_related("camera")
        .order_by("-started_at")[:50]
    )
    # The thresholds that decide each camera's bands now: its own where set, else the active
    # model's (issue #15: admins could not see what applied).
    version = ModelVersion.objects.filter(is_active=True).first()
    # Only the cameras this viewer may see: the notice is scoped as the cameras are.
    notes = capacity_notes(camera.pk for camera in cameras)
    rows = [
        {
            "camera": camera,
            "thresholds": (
                thresholds_for(
                    camera_low=camera.low_threshold,
                    camera_high=camera.high_threshold,
                    model_low=version.low_threshold,
                    model_high=version.high_threshold,
                )
                if version is not None
                else None
            ),
            "own_thresholds": camera.low_threshold is not None or camera.high_threshold is not None,
            "capacity": notes.get(camera.pk),
        }
        for camera in cameras
    ]
    return render(
        request,
        "cameras/site_detail.html",
        {
            "site": site,
            "cameras": cameras,
            "rows": rows,
            "cases": cases,
            "model": version,
            "storage": storage_plan(sites=[site]),
        },
    )


@require_GET
@login_required
def camera_detail(request: HttpRequest, pk: int) -> HttpResponse:
    camera = get_object_or_404(cameras_visible_to(request.user), pk=pk)
    site = camera.site
    zone = zoneinfo.ZoneInfo(site.timezone)
    form = DayForm(request.GET or None)
    day = timezone.now().astimezone(zone).date()
    if form.is_valid() and form.cleaned_data["day"]:
        day = form.cleaned_data["day"]
    start = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    buckets = peak_scores_by_bucket(camera, start, end, DAY_BUCKET_SECONDS)
    day_seconds = (end - start).total_seconds()  # 23 or 25 hours on a DST change
    bars = timeline_bars(
        (
            (
                bucket.index * DAY_BUCKET_SECONDS,
                (bucket.index + 1) * DAY_BUCKET_SECONDS,
                bucket.score,
                bucket.band,
                bucket.index,
                bucket.band != Band.SAFE,
            )
            for bucket in buckets
        ),
        start=0.0,
        end=day_seconds,
    )
    cases = (
        cases_visible_to(request.user)
        .filter(camera=camera, started_at__gte=start, started_at__lt=end)
        .select_related("camera")
        .order_by("-started_at")
    )
    # A marker per case over the day's bars: five-minute bars made an incident a sliver
    # (issue #15); a marker is at least 0.6 % of the day wide and links to the case.
    markers = [
        {
            "pk": case.pk,
            "band": case.band,
            "x": max(0.0, (case.started_at - start).total_seconds() / day_seconds * 1000),
            "width": max(
                6.0, (case.ended_at - case.started_at).total_seconds() / day_seconds * 1000
            ),
            "label": site_time(case.started_at, site.timezone, short=True),
        }
        for case in cases[:100]
    ]
    return render(
        request,
        "cameras/camera_detail.html",
        {
            "markers": markers,
            "camera": camera,
            "capacity": capacity_notes([camera.pk]).get(camera.pk),
            "site": site,
            "day": day,
            "previous_day": day - dt.timedelta(days=1),
            "next_day": day + dt.timedelta(days=1),
            "form": form,
            "bars": bars,
            "hours": [f"{h:02d}:00" for h in range(0, 25, 6)],
            "cases": cases[:100],
        },
    )


def _camera_form_page(request: HttpRequest, site: Site, camera: Camera | None) -> HttpResponse:
    form = CameraForm(request.POST or None, site=site, instance=camera)
    probe: ProbeResult | None = None
    if request.method == "POST":
        if "probe" in request.POST:
            # The second button tests the detect stream, under the same policy as the source.
            field = "analysis_uri" if request.POST.get("probe") == "analysis" else "source_uri"
            uri = str(request.POST.get(field, ""))[:1000]
            refusal = source_allowed_for(uri, is_operator=request.user.is_superuser)
            probe = (
                ProbeResult(False, refusal, ProbeFailure.BAD_URI)
                if refusal is not None
                else probe_source(uri)
            )
            form = CameraForm(request.POST, site=site, instance=camera)
        elif form.is_valid():
            fields = {name: form.cleaned_data[name] for name in CameraForm.Meta.fields}
            try:
                if camera is None:
                    camera = camera_create(
                        model_low_threshold=model_version_active().low_threshold,
                        site=site,
                        actor=request.user,
                        ip_address=client_ip(request),
                        **fields,
                    )
                else:
                    camera = camera_update(
                        model_low_threshold=model_version_active().low_threshold,
                        camera=camera,
                        actor=request.user,
                        ip_address=client_ip(request),
                        **fields,
                    )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, _("Camera “%(name)s” is saved.") % {"name": camera.name})
                return redirect("site-detail", pk=site.pk)
    status = 400 if request.method == "POST" and "probe" not in request.POST else 200
    return render(
        request,
        "cameras/camera_form.html",
        {"form": form, "site": site, "camera": camera, "probe": probe},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@login_required
def camera_create_view(request: HttpRequest, site_pk: int) -> HttpResponse:
    site = get_object_or_404(sites_managed_by(request.user), pk=site_pk)
    return _camera_form_page(request, site, None)


@require_http_methods(["GET", "POST"])
@login_required
def camera_edit(request: HttpRequest, pk: int) -> HttpResponse:
    camera = get_object_or_404(
        cameras_visible_to(request.user).filter(site__in=sites_managed_by(request.user)), pk=pk
    )
    return _camera_form_page(request, camera.site, camera)


@require_http_methods(["GET", "POST"])
@login_required
def site_retention(request: HttpRequest, pk: int) -> HttpResponse:
    site = get_object_or_404(sites_managed_by(request.user), pk=pk)
    form = SiteRetentionForm(request.POST or None, site=site)
    if request.method == "POST" and form.is_valid():
        try:
            site_set_retention(
                site=site,
                retention_hours=form.cleaned_data["retention_days"] * 24,
                actor=request.user,
                ip_address=client_ip(request),
            )
        except ValidationError as exc:
            for errors in exc.message_dict.values():
                form.add_error("retention_days", errors)
        else:
            messages.success(request, _("Retention is saved."))
            return redirect("site-detail", pk=site.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "cameras/site_retention.html", {"form": form, "site": site}, status=status
    )
