"""The director's access log (영상정보 열람·제공 관리대장), read from the audit chain.

Every view, download, copy and erasure of a site's footage is already an audit event; this
module only finds those of one site and says what each was, by whom and why. Nothing is
written here, so the log cannot disagree with the chain.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast

from audit.models import AuditEvent
from cameras.models import Site
from detection.models import Case, Segment
from reports.models import EvidencePackage, WorkingCopy
from viewings.models import TakeoutCopy

# What each footage action is, for the log's "kind" column (Korean / English).
KINDS: dict[str, tuple[str, str]] = {
    "segment.original.view": ("view", "열람 / view"),
    "segment.preview.view": ("view", "열람 / view"),
    "footage.view": ("view", "열람 / view"),
    "case.view": ("view", "열람 / view"),
    "working_copy.view": ("view", "열람 / view"),
    "working_copy.blur_off": ("view", "열람 / view"),
    "evidence_package.create": ("copy", "복사 / copy"),
    "evidence_package.download": ("download", "다운로드 / download"),
    "footage.copy": ("copy", "복사 / copy"),
    "footage.copy.download": ("download", "다운로드 / download"),
    "segment.purge": ("erasure", "삭제 / erasure"),
}
OUTCOMES: dict[str, str] = {
    "success": "정상 / success",
    "denied": "거부 / denied",
    "failed": "실패 / failed",
}
WHY: dict[str, str] = {
    "viewing_request": "보호자 열람 요청 / parent's viewing request",
    "retention": "보관 기간 경과 / retention period over",
    "quota": "저장 공간 한도 / storage quota",
}


def _ids(queryset: QuerySet[Any]) -> QuerySet[Any]:
    """The objects' ids as text, to match AuditEvent.object_id in the database."""
    ids: QuerySet[Any] = queryset.annotate(text_id=Cast("pk", CharField())).values("text_id")
    return ids


@dataclass(frozen=True)
class AccessEntry:
    event_id: int
    at: dt.datetime
    kind: str
    kind_label: str
    action: str
    who: str
    why: str
    camera: str
    outcome: str
    ip_address: str

    @property
    def outcome_label(self) -> str:
        return OUTCOMES.get(self.outcome, self.outcome)


def _targets(site: Site, camera_id: int | None) -> Q:
    segments = Segment.objects.filter(camera__site=site)
    cases = Case.objects.filter(camera__site=site)
    packages = EvidencePackage.objects.filter(report__case__camera__site=site)
    copies = TakeoutCopy.objects.filter(request__site=site)
    working = WorkingCopy.objects.filter(segment__camera__site=site)
    if camera_id is not None:
        segments = segments.filter(camera_id=camera_id)
        cases = cases.filter(camera_id=camera_id)
        packages = packages.filter(report__case__camera_id=camera_id)
        copies = copies.filter(request__camera_id=camera_id)
        working = working.filter(segment__camera_id=camera_id)
    return (
        Q(object_type=Segment._meta.label, object_id__in=_ids(segments))
        | Q(object_type=Case._meta.label, object_id__in=_ids(cases))
        | Q(object_type=EvidencePackage._meta.label, object_id__in=_ids(packages))
        | Q(object_type=TakeoutCopy._meta.label, object_id__in=_ids(copies))
        | Q(object_type=WorkingCopy._meta.label, object_id__in=_ids(working))
    )


def access_events(
    *,
    site: Site,
    day_from: dt.date | None = None,
    day_to: dt.date | None = None,
    camera_id: int | None = None,
) -> QuerySet[AuditEvent]:
    """The site's footage events, newest first; days are the site's calendar days."""
    zone = zoneinfo.ZoneInfo(site.timezone)
    events = AuditEvent.objects.filter(action__in=KINDS).filter(_targets(site, camera_id))
    if day_from is not None:
        events = events.filter(
            occurred_at__gte=dt.datetime.combine(day_from, dt.time(0), tzinfo=zone)
        )
    if day_to is not None:
        end = dt.datetime.combine(day_to + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
        events = events.filter(occurred_at__lt=end)
    return events.order_by("-occurred_at", "-id")


def _camera_names(site: Site) -> dict[int, str]:
    return dict(site.cameras.values_list("pk", "name"))


def access_entries(
    events: QuerySet[AuditEvent], *, site: Site, limit: int = 2000
) -> list[AccessEntry]:
    names = _camera_names(site)
    rows = list(events[:limit])
    segment_cameras = dict(
        Segment.objects.filter(
            pk__in=[int(e.object_id) for e in rows if e.object_type == Segment._meta.label]
        ).values_list("pk", "camera_id")
    )
    case_cameras = dict(
        Case.objects.filter(
            pk__in=[int(e.object_id) for e in rows if e.object_type == Case._meta.label]
        ).values_list("pk", "camera_id")
    )
    entries = []
    for event in rows:
        details = event.details if isinstance(event.details, dict) else {}
        camera_id = details.get("camera")
        if camera_id is None and event.object_type == Segment._meta.label:
            camera_id = segment_cameras.get(int(event.object_id))
        if camera_id is None and event.object_type == Case._meta.label:
            camera_id = case_cameras.get(int(event.object_id))
        kind, label = KINDS[event.action]
        why_key = str(details.get("why") or details.get("reason") or "")
        why = WHY.get(why_key, why_key)
        if not why and details.get("via"):
            why = str(details["via"])
        if details.get("viewing_request"):
            why = f"{WHY['viewing_request']} #{details['viewing_request']}"
        entries.append(
            AccessEntry(
                event_id=event.pk,
                at=event.occurred_at,
                kind=kind,
                kind_label=label,
                action=event.action,
                who=event.actor_label,
                why=why,
                camera=names.get(int(camera_id), "") if camera_id is not None else "",
                outcome=event.outcome,
                ip_address=event.ip_address or "",
            )
        )
    return entries


def access_log_csv(entries: list[AccessEntry], *, site: Site) -> str:
    zone = zoneinfo.ZoneInfo(site.timezone)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "일시/time",
            "구분/kind",
            "카메라/camera",
            "열람자/who",
            "사유/why",
            "결과/outcome",
            "IP",
            "감사 이벤트/audit event",
        ]
    )
    for entry in entries:
        writer.writerow(
            [
                entry.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z"),
                entry.kind_label,
                entry.camera,
                _csv_safe(entry.who),
                _csv_safe(entry.why),
                entry.outcome_label,
                entry.ip_address,
                entry.event_id,
            ]
        )
    # A byte-order mark so spreadsheet programs read the Korean as UTF-8.
    return "\ufeff" + out.getvalue()


def _csv_safe(value: str) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas: quote them."""
    return "'" + value if value[:1] in {"=", "+", "-", "@", "\t", "\r"} else value
