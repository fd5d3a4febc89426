"""Retention: erase safe footage after its site's retention time, and under a storage quota.

Legal hold. A segment is held, and never erased by retention, while it belongs to any case
that is open, under review, escalated or reported, and also to any case that was ever reported
to the police (it has a `PoliceReport`), even once that case is closed: the police may still
ask for the evidence, and an erased original cannot be brought back. Footage of a case that was
dismissed (or dismissed and then closed) without a report is ordinary footage again.

Only footage whose analysis is over (analysed, skipped as still, or failed) is erased; pending
windows may still become a case. Erasing removes the original, the preview and any working
copies, marks the segment `purged`, and keeps the row with its SHA-256, so timelines and
hashes survive. Every erasure is an audit event.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from access.policy import OPERATORS_GROUP
from alerts.broadcast import broadcast
from audit.models import AuditEvent
from audit.services import audit_record
from cameras.jurisdictions import jurisdiction_of
from cameras.models import Site
from detection.models import Case, FootageHold, RetentionRun, Segment, segment_snapshot_name

logger = logging.getLogger(__name__)

HELD_STATUSES = (
    Case.Status.OPEN,
    Case.Status.UNDER_REVIEW,
    Case.Status.ESCALATED,
    Case.Status.REPORTED,
)
# Analysis is over for these; a pending window may still join a case.
FINISHED_STATUSES = (Segment.Status.ANALYSED, Segment.Status.SKIPPED, Segment.Status.FAILED)
_QUOTA_BATCH = 200


def held_segment_ids() -> QuerySet[Case, Any]:
    holding_cases = Case.objects.filter(
        Q(status__in=HELD_STATUSES) | Q(police_report__isnull=False)
    )
    return holding_cases.filter(segments__isnull=False).values("segments")


def under_footage_hold() -> Q:
    """Segments overlapping an active FootageHold (a viewing request or a legal hold) of
    their camera, or of their whole site."""
    holds = FootageHold.objects.filter(
        released_at=None,
        site_id=OuterRef("camera__site_id"),
        starts_at__lt=OuterRef("ended_at"),
        ends_at__gt=OuterRef("started_at"),
    ).filter(Q(camera=None) | Q(camera_id=OuterRef("camera_id")))
    return Q(Exists(holds))


def purgeable_segments() -> QuerySet[Segment]:
    """Footage retention may erase: analysis over, not purged yet, under no legal hold."""
    return (
        Segment.objects.filter(status__in=FINISHED_STATUSES)
        .exclude(pk__in=held_segment_ids())
        .exclude(under_footage_hold())
    )


def is_held(segment_id: int) -> bool:
    if held_segment_ids().filter(segments=segment_id).exists():
        return True
    return Segment.objects.filter(pk=segment_id).filter(under_footage_hold()).exists()


def below_legal_minimum(*, now: dt.datetime) -> Q:
    """Footage younger than its site's legal minimum retention: never erased, not even to
    get under the storage quota."""
    codes = Site.objects.values_list("jurisdiction", flat=True).distinct()
    young = Q(pk__in=[])
    for code in codes:
        hours = jurisdiction_of(code).min_retention_hours
        young |= Q(camera__site__jurisdiction=code, ended_at__gte=now - dt.timedelta(hours=hours))
    return young


def expired_segments(*, now: dt.datetime) -> QuerySet[Segment]:
    """Purgeable footage older than its site's retention_hours (one condition per distinct
    retention value, so a thousand sites with the default cost one condition)."""
    hours_values = Site.objects.values_list("retention_hours", flat=True).distinct()
    expired = Q(pk__in=[])
    for hours in hours_values:
        expired |= Q(
            camera__site__retention_hours=hours, ended_at__lt=now - dt.timedelta(hours=hours)
        )
    return purgeable_segments().filter(expired).order_by("started_at", "pk")


def _file_size(file: FieldFile) -> int:
    if not file.name:
        return 0
    try:
        return int(file.storage.size(file.name))
    except (FileNotFoundError, OSError):
        return 0


def segment_footage_bytes(segment: Segment) -> int:
    total = _file_size(segment.original) + _file_size(segment.preview)
    return total + sum(_file_size(copy.file) for copy in segment.working_copies.all())


def media_usage_bytes() -> int:
    """Bytes of every file under MEDIA_ROOT: what actually fills the disk."""
    total = 0
    root = Path(settings.MEDIA_ROOT)
    for directory, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += (Path(directory) / name).stat().st_size
            except OSError:
                continue  # removed while we walked
    return total


def segment_purge(*, segment_id: int, reason: str, now: dt.datetime | None = None) -> int | None:
    """Erase one segment's footage; the bytes freed, or None when it must stay.

    The hold is checked again under the row lock, so a case opened since the plan was made
    still saves its footage. Files go before the row is marked: should the transaction fail,
    the next run finds the row unmarked and erases again (deleting a missing file is fine),
    so footage is never left behind a row that claims it is gone.
    """
    with transaction.atomic():
        segment = Segment.objects.select_for_update().filter(pk=segment_id).first()
        if segment is None or segment.status not in FINISHED_STATUSES:
            return None
        if is_held(segment_id):
            return None
        copies = list(segment.working_copies.all())
        freed = segment_footage_bytes(segment)
        for file in [segment.original, segment.preview, *(copy.file for copy in copies)]:
            if file.name:
                file.storage.delete(file.name)
        # The camera wall's stills of the window are footage too.
        for blur in (True, False):
            default_storage.delete(segment_snapshot_name(segment, blur=blur))
        for copy in copies:
            copy.delete()
        segment.original = ""
        segment.preview = ""
        segment.status = Segment.Status.PURGED
        segment.save(update_fields=["original", "preview", "status"])
        audit_record(
            actor=None,
            action="segment.purge",
            target=segment,
            details={
                "reason": reason,
                "camera": segment.camera_id,
                "started_at": segment.started_at.isoformat(),
                "ended_at": segment.ended_at.isoformat(),
                "original_sha256": segment.original_sha256,
                "freed_bytes": freed,
                "at": (now or timezone.now()).isoformat(),
            },
        )
    return freed


@dataclass
class PlannedErasure:
    segment_id: int
    camera_id: int
    started_at: dt.datetime
    reason: str
    bytes: int


@dataclass
class RetentionReport:
    dry_run: bool
    erasures: list[PlannedErasure] = field(default_factory=list)
    freed_bytes: int = 0
    storage_bytes: int = 0
    quota_bytes: int = 0
    quota_exceeded: bool = False


def _oldest_purgeable(exclude: set[int], *, now: dt.datetime) -> Iterator[Segment]:
    """Purgeable segments past their legal minimum, oldest first, in batches, skipping ids
    already handled."""
    last: tuple[dt.datetime, int] | None = None
    while True:
        batch = (
            purgeable_segments().exclude(below_legal_minimum(now=now)).order_by("started_at", "pk")
        )
        if last is not None:
            batch = batch.filter(Q(started_at__gt=last[0]) | Q(started_at=last[0], pk__gt=last[1]))
        rows = list(batch.prefetch_related("working_copies")[:_QUOTA_BATCH])
        if not rows:
            return
        for segment in rows:
            if segment.pk not in exclude:
                yield segment
        last = (rows[-1].started_at, rows[-1].pk)


def retention_run(
    *, dry_run: bool, trigger: str = RetentionRun.Trigger.SCHEDULE, now: dt.datetime | None = None
) -> RetentionReport:
    """Erase expired safe footage, then the oldest safe footage while over the quota.

    A dry run erases nothing and writes nothing: it lists what a real run would erase now.
    """
    now = now or timezone.now()
    quota = int(settings.MEDIA_QUOTA_BYTES)
    report = RetentionReport(dry_run=dry_run, quota_bytes=quota)
    run = None
    if not dry_run:
        run = RetentionRun.objects.create(
            trigger=trigger, dry_run=False, started_at=timezone.now(), quota_bytes=quota
        )
    handled: set[int] = set()

    def take(segment: Segment, reason: str) -> None:
        handled.add(segment.pk)
        if dry_run:
            size = segment_footage_bytes(segment)
        else:
            freed = segment_purge(segment_id=segment.pk, reason=reason, now=now)
            if freed is None:
                return
            size = freed
        report.freed_bytes += size
        report.erasures.append(
            PlannedErasure(segment.pk, segment.camera_id, segment.started_at, reason, size)
        )

    for segment in (
        expired_segments(now=now)
        .prefetch_related("working_copies")
        .iterator(chunk_size=_QUOTA_BATCH)
    ):
        take(segment, "retention")

    usage = media_usage_bytes()
    # A dry run removed nothing: count what it would have freed.
    projected = usage - report.freed_bytes if dry_run else usage
    if quota and projected > quota:
        for segment in _oldest_purgeable(handled, now=now):
            before = report.freed_bytes
            take(segment, "quota")
            projected -= report.freed_bytes - before
            if projected <= quota:
                break
    report.storage_bytes = max(projected, 0) if dry_run else media_usage_bytes()
    report.quota_exceeded = bool(quota) and report.storage_bytes > quota
    if run is not None:
        run.finished_at = timezone.now()
        run.purged_segments = len(report.erasures)
        run.freed_bytes = report.freed_bytes
        run.storage_bytes = report.storage_bytes
        run.quota_exceeded = report.quota_exceeded
        run.save()
        if report.quota_exceeded:
            _alert_quota_exceeded(run)
        _pause_or_resume_analysis(quota_exceeded=report.quota_exceeded, run=run)
    return report


def _pause_or_resume_analysis(*, quota_exceeded: bool, run: RetentionRun) -> None:
    """When the quota and the legal minimum collide, stop analysing new footage of every site
    with footage on the disk rather than erase what the law protects; resume once under quota.
    """
    if not quota_exceeded:
        resumed = list(Site.objects.exclude(analysis_paused_at=None).values_list("pk", flat=True))
        if resumed:
            Site.objects.filter(pk__in=resumed).update(
                analysis_paused_at=None, analysis_paused_reason=""
            )
            for site_id in resumed:
                audit_record(
                    actor=None,
                    action="site.analysis_resume",
                    details={"site": site_id, "retention_run": run.pk},
                )
        return
    with_footage = Segment.objects.exclude(status=Segment.Status.PURGED).values("camera__site_id")
    affected = Site.objects.filter(analysis_paused_at=None, pk__in=with_footage)
    reason = (
        "저장 공간 한도와 법정 최소 보관 기간이 충돌하여 새 영상의 분석을 멈췄습니다. 영상은 "
        "계속 녹화·보관됩니다. / The storage quota and the legal minimum retention collide: "
        "new footage is still recorded and kept, but no longer analysed. Add storage or raise "
        "MEDIA_QUOTA_BYTES."
    )
    for site in affected:
        Site.objects.filter(pk=site.pk).update(
            analysis_paused_at=timezone.now(), analysis_paused_reason=reason
        )
        audit_record(
            actor=None,
            action="site.analysis_pause",
            target=site,
            outcome=AuditEvent.Outcome.FAILED,
            details={"retention_run": run.pk, "reason": reason},
        )
        broadcast(
            [OPERATORS_GROUP],
            {"type": "ops.alert", "alert": "storage.analysis_paused", "site": site.pk},
        )


def _alert_quota_exceeded(run: RetentionRun) -> None:
    """Nothing more may be erased and the disk is still over quota: a person must act."""
    details = {
        "storage_bytes": run.storage_bytes,
        "quota_bytes": run.quota_bytes,
        "retention_run": run.pk,
    }
    logger.error(
        "media storage %d bytes is over the quota of %d bytes and only held case footage is "
        "left: add space or raise MEDIA_QUOTA_BYTES",
        run.storage_bytes,
        run.quota_bytes,
    )
    audit_record(
        actor=None,
        action="retention.quota_exceeded",
        target=run,
        outcome=AuditEvent.Outcome.FAILED,
        details=details,
    )
    broadcast([OPERATORS_GROUP], {"type": "ops.alert", "alert": "storage.quota", **details})
