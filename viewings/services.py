"""Writes of viewing requests: every step validated, audited, and in the site's calendar."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import tempfile
import unicodedata
import uuid
import zoneinfo
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from access.policy import site_group
from alerts.broadcast import broadcast
from audit.hashing import file_sha256
from audit.services import audit_record
from cameras.models import Camera, Site
from detection.bands import Band
from detection.models import Case, Detection, FootageHold, Segment
from reports.models import PoliceReport
from reports.services import case_report
from viewings.copies import Box, CopyError, make_takeout_copy, validate_child_box
from viewings.deadlines import reply_due_date
from viewings.models import TakeoutCopy, ViewingAttachment, ViewingRequest

if TYPE_CHECKING:
    from django.core.files.uploadedfile import UploadedFile

    from audit.typing import Actor

# What a guardian's document may be, recognised by its first bytes (never by its name).
ATTACHMENT_SIGNATURES = {
    b"%PDF-": ("application/pdf", ".pdf"),
    b"\xff\xd8\xff": ("image/jpeg", ".jpg"),
    b"\x89PNG\r\n\x1a\n": ("image/png", ".png"),
}
# A request covers a day at most: a longer range is several requests, each with its reason.
MAX_RANGE = dt.timedelta(hours=24)
_UNSAFE_NAME = re.compile(r"[^\w.\- ()]+", re.UNICODE)


def _zone(site: Site) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(site.timezone)


def segments_of(request: ViewingRequest) -> QuerySet[Segment]:
    """The footage of the request's camera and time range that still has its files."""
    return (
        Segment.objects.filter(
            camera_id=request.camera_id,
            started_at__lt=request.ends_at,
            ended_at__gt=request.starts_at,
        )
        .exclude(status=Segment.Status.PURGED)
        .order_by("started_at", "pk")
    )


def viewing_request_create(
    *,
    site: Site,
    camera: Camera,
    group_or_room: str,
    child_label: str,
    guardian_name: str,
    guardian_contact: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    reason: str,
    actor: Actor,
    ip_address: str | None = None,
    now: dt.datetime | None = None,
) -> ViewingRequest:
    """Record a request and hold its footage at once, before anyone looks at it."""
    now = now or timezone.now()
    if camera.site_id != site.pk:
        raise ValidationError(
            {"camera": "이 어린이집의 카메라가 아닙니다. / Not a camera of this site."}
        )
    if ends_at <= starts_at:
        raise ValidationError(
            {"ends_at": "끝 시각은 시작 시각 뒤여야 합니다. / The end must follow the start."}
        )
    if ends_at - starts_at > MAX_RANGE:
        raise ValidationError(
            {"ends_at": "한 번에 24시간까지 요청할 수 있습니다. / At most 24 hours per request."}
        )
    if starts_at > now:
        raise ValidationError(
            {"starts_at": "아직 녹화되지 않은 시간입니다. / That time is not recorded yet."}
        )
    law = site.law
    with transaction.atomic():
        hold = FootageHold.objects.create(
            site=site,
            camera=camera,
            starts_at=starts_at,
            ends_at=ends_at,
            kind=FootageHold.Kind.VIEWING_REQUEST,
            reason=law.viewing_reference,
        )
        request = ViewingRequest(
            site=site,
            camera=camera,
            group_or_room=group_or_room,
            child_label=child_label,
            guardian_name=guardian_name,
            guardian_contact=guardian_contact,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
            received_at=now,
            reply_due=reply_due_date(
                received_at=now, zone=site.timezone, days=law.viewing_reply_days
            ),
            hold=hold,
            created_by=actor if isinstance(actor, User) else None,
        )
        request.full_clean()
        request.save()
        hold.held_by = f"{ViewingRequest._meta.label}:{request.pk}"
        hold.save(update_fields=["held_by"])
        # Who the guardian is stays in the request; the audit chain, which many read, gets
        # only what was held and why.
        audit_record(
            actor=actor,
            action="viewing_request.create",
            target=request,
            ip_address=ip_address,
            details={
                "site": site.pk,
                "camera": camera.pk,
                "starts_at": starts_at.isoformat(),
                "ends_at": ends_at.isoformat(),
                "reply_due": request.reply_due.isoformat(),
                "hold": hold.pk,
            },
        )
    return request


def clean_attachment_name(name: str) -> str:
    """The sender's file name, safe to show: no path, no control or odd characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _UNSAFE_NAME.sub("_", base).strip(" .")
    return base[:100] or "attachment"


def viewing_attachment_add(
    *,
    request: ViewingRequest,
    upload: UploadedFile[bytes],
    actor: Actor,
    ip_address: str | None = None,
) -> ViewingAttachment:
    limit = int(settings.VIEWING_ATTACHMENT_MAX_BYTES)
    if upload.size is None or upload.size > limit:
        raise ValidationError(
            f"첨부 파일은 {limit // (1024 * 1024)} MiB까지입니다. / Attachments are at most "
            f"{limit // (1024 * 1024)} MiB."
        )
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise ValidationError("첨부 파일이 너무 큽니다. / The attachment is too large.")
    if not data:
        raise ValidationError("빈 파일입니다. / The file is empty.")
    kind = next(
        (value for magic, value in ATTACHMENT_SIGNATURES.items() if data.startswith(magic)), None
    )
    if kind is None:
        raise ValidationError(
            "PDF, JPEG, PNG 파일만 받습니다. / Only PDF, JPEG and PNG files are accepted."
        )
    content_type, suffix = kind
    digest = hashlib.sha256(data).hexdigest()
    with transaction.atomic():
        attachment = ViewingAttachment(
            request=request,
            name=clean_attachment_name(upload.name or ""),
            content_type=content_type,
            size=len(data),
            sha256=digest,
        )
        # Our own name on the disk: what the sender called the file never reaches a path.
        attachment.file.save(f"{uuid.uuid4().hex}{suffix}", ContentFile(data), save=False)
        attachment.full_clean()
        attachment.save()
        audit_record(
            actor=actor,
            action="viewing_request.attach",
            target=request,
            ip_address=ip_address,
            details={"attachment": attachment.pk, "sha256": digest, "type": content_type},
        )
    return attachment


def _require_open(request: ViewingRequest) -> None:
    if request.status == ViewingRequest.Status.CLOSED:
        raise ValidationError("종결된 요청입니다. / The request is closed.")


def viewing_schedule(
    *,
    request: ViewingRequest,
    appointment_at: dt.datetime,
    place: str,
    actor: Actor,
    ip_address: str | None = None,
) -> ViewingRequest:
    """The director's answer: a place and a time for the viewing."""
    _require_open(request)
    if not place.strip():
        raise ValidationError({"appointment_place": "장소를 적어 주세요. / Give a place."})
    with transaction.atomic():
        request.appointment_at = appointment_at
        request.appointment_place = place.strip()
        request.answered_at = request.answered_at or timezone.now()
        if request.status == ViewingRequest.Status.RECEIVED:
            request.status = ViewingRequest.Status.SCHEDULED
        request.full_clean()
        request.save()
        audit_record(
            actor=actor,
            action="viewing_request.schedule",
            target=request,
            ip_address=ip_address,
            details={"appointment_at": appointment_at.isoformat()},
        )
    return request


def viewing_record_onsite(
    *, request: ViewingRequest, actor: Actor, ip_address: str | None = None
) -> int:
    """The guardian watched the originals on site: one access-log entry per window shown."""
    _require_open(request)
    segments = list(segments_of(request))
    with transaction.atomic():
        for segment in segments:
            audit_record(
                actor=actor,
                action="footage.view",
                target=segment,
                ip_address=ip_address,
                details={
                    "camera": segment.camera_id,
                    "kind": "original",
                    "on_site": True,
                    "why": "viewing_request",
                    "viewing_request": request.pk,
                },
            )
        request.status = ViewingRequest.Status.VIEWED
        request.save(update_fields=["status"])
    return len(segments)


def takeout_watermark(*, request: ViewingRequest, recipient: str, at: dt.datetime) -> str:
    local = at.astimezone(_zone(request.site))
    return (
        f"AbuseWatch 열람요청/viewing request #{request.pk} · "
        f"{local:%Y-%m-%d %H:%M} {request.site.timezone} · 수령/to: {recipient}"
    )


def viewing_takeout_create(
    *,
    request: ViewingRequest,
    child_box: Box | list[float],
    recipient: str,
    actor: Actor,
    ip_address: str | None = None,
) -> TakeoutCopy:
    """Make the copy the guardian takes away; its hash goes into the audit chain."""
    _require_open(request)
    recipient = recipient.strip()[:120]
    if not recipient:
        raise ValidationError({"recipient": "받는 사람을 적어 주세요. / Name the recipient."})
    try:
        box = validate_child_box(child_box)
    except CopyError as error:
        raise ValidationError({"child_box": str(error)}) from error
    segments = [segment for segment in segments_of(request) if segment.original]
    now = timezone.now()
    watermark = takeout_watermark(request=request, recipient=recipient, at=now)
    with tempfile.TemporaryDirectory(prefix="abusewatch-takeout-") as folder:
        target = Path(folder) / "copy.mp4"
        try:
            make_takeout_copy(
                [Path(segment.original.path) for segment in segments],
                target,
                child_box=box,
                watermark=watermark,
            )
        except CopyError as error:
            raise ValidationError(str(error)) from error
        digest = file_sha256(target)
        with transaction.atomic():
            copy = TakeoutCopy(
                request=request,
                sha256=digest,
                size=target.stat().st_size,
                recipient=recipient,
                child_box=list(box),
                watermark=watermark,
                segments=[segment.pk for segment in segments],
                created_by=actor if isinstance(actor, User) else None,
            )
            with target.open("rb") as handle:
                copy.file.save(f"request-{request.pk}-{digest[:12]}.mp4", File(handle), save=False)
            copy.full_clean()
            copy.save()
            audit_record(
                actor=actor,
                action="footage.copy",
                target=copy,
                ip_address=ip_address,
                details={
                    "viewing_request": request.pk,
                    "camera": request.camera_id,
                    "sha256": digest,
                    "segments": copy.segments,
                    "recipient": recipient,
                    "why": "viewing_request",
                },
            )
    return copy


def viewing_close(
    *,
    request: ViewingRequest,
    outcome: str,
    note: str,
    actor: Actor,
    ip_address: str | None = None,
) -> ViewingRequest:
    """Close with the outcome. The footage stays held: footage whose viewing was requested
    is kept even after the retention period."""
    _require_open(request)
    if outcome not in ViewingRequest.Outcome.values:
        raise ValidationError({"outcome": "결과를 고르세요. / Choose an outcome."})
    with transaction.atomic():
        request.status = ViewingRequest.Status.CLOSED
        request.outcome = outcome
        request.outcome_note = note
        request.closed_at = timezone.now()
        request.full_clean()
        request.save()
        audit_record(
            actor=actor,
            action="viewing_request.close",
            target=request,
            ip_address=ip_address,
            details={"outcome": outcome},
        )
    return request


def viewing_report_to_police(
    *, request: ViewingRequest, actor: Actor, ip_address: str | None = None
) -> PoliceReport:
    """One step from a request to a police report: the requested footage becomes a case,
    escalated, and reported to the site's station like an expert's escalation."""
    _require_open(request)
    if request.police_report_id is not None:
        raise ValidationError("이미 신고되었습니다. / Already reported.")
    segments = list(segments_of(request))
    peak = (
        Detection.objects.filter(segment__in=segments).aggregate(peak=Max("score"))["peak"] or 0.0
    )
    with transaction.atomic():
        case = Case.objects.create(
            camera_id=request.camera_id,
            started_at=request.starts_at,
            ended_at=request.ends_at,
            peak_score=float(peak),
            band=Band.UNCERTAIN,
            status=Case.Status.ESCALATED,
        )
        case.segments.add(*segments)
        audit_record(
            actor=actor,
            action="case.open",
            target=case,
            ip_address=ip_address,
            details={"viewing_request": request.pk, "segments": len(segments)},
        )
    actor_id = actor.pk if getattr(actor, "is_authenticated", False) else None  # type: ignore[union-attr]
    report = case_report(
        case_id=case.pk,
        reason=PoliceReport.Reason.VIEWING,
        actor_id=actor_id,
        ip_address=ip_address,
    )
    if report is None:
        raise ValidationError("신고를 보낼 수 없습니다. / The report could not be sent.")
    ViewingRequest.objects.filter(pk=request.pk).update(police_report=report)
    request.refresh_from_db()
    return report


def reminder_due(request: ViewingRequest, *, now: dt.datetime) -> bool:
    """Remind once a day while a request waits for its answer and its deadline is near."""
    if request.status != ViewingRequest.Status.RECEIVED:
        return False
    today = now.astimezone(_zone(request.site)).date()
    if request.last_reminded_on == today:
        return False
    return (request.reply_due - today).days <= 3


def viewing_remind(*, now: dt.datetime | None = None) -> list[int]:
    """Record a reminder for each request awaiting its answer within 3 days of its deadline
    (or past it), and tell the site's admins over their socket group."""
    now = now or timezone.now()
    reminded: list[int] = []
    waiting = ViewingRequest.objects.filter(status=ViewingRequest.Status.RECEIVED).select_related(
        "site"
    )
    for request in waiting:
        if not reminder_due(request, now=now):
            continue
        today = now.astimezone(_zone(request.site)).date()
        ViewingRequest.objects.filter(pk=request.pk).update(last_reminded_on=today)
        overdue = today > request.reply_due
        audit_record(
            actor=None,
            action="viewing_request.remind",
            target=request,
            details={"reply_due": request.reply_due.isoformat(), "overdue": overdue},
        )
        broadcast(
            [site_group(request.site_id)],
            {
                "type": "viewing.reminder",
                "request": request.pk,
                "reply_due": request.reply_due.isoformat(),
                "overdue": overdue,
            },
        )
        reminded.append(request.pk)
    return reminded
