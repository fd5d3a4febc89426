"""Storage planning: 60 days of video is a lot, so the pages show what the law will cost.

From the bytes actually stored per camera over the last days (originals, as recorded), each
camera gets its bytes per day and the days of footage it keeps; each site the disk its own
retention (at least the legal minimum) needs; the whole installation the days until the disk
reaches MEDIA_QUOTA_BYTES. Operators are warned STORAGE_WARNING_DAYS ahead, long before the
quota would force anything: retention never erases footage inside the legal minimum, so a full
disk would stop analysis (see retention.py) rather than break the law.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from access.policy import OPERATORS_GROUP
from alerts.broadcast import broadcast
from audit.models import AuditEvent
from audit.services import audit_record
from cameras.models import Camera, Site
from detection.models import RetentionRun, Segment
from detection.retention import media_usage_bytes

# Bytes per day are averaged over this many recent days (or fewer, for a new camera).
RATE_WINDOW_DAYS = 7
DAY_SECONDS = 86_400.0


@dataclass(frozen=True)
class CameraStorage:
    camera_id: int
    name: str
    bytes_per_day: float
    stored_bytes: int
    days_kept: float


@dataclass
class SitePlan:
    site: Site
    cameras: list[CameraStorage] = field(default_factory=list)

    @property
    def bytes_per_day(self) -> float:
        return sum(camera.bytes_per_day for camera in self.cameras)

    @property
    def retention_days(self) -> float:
        return max(self.site.retention_hours, self.site.law.min_retention_hours) / 24

    @property
    def needed_bytes(self) -> float:
        """Disk for the site's whole retention period (never below the legal minimum)."""
        return self.bytes_per_day * self.retention_days

    @property
    def legal_needed_bytes(self) -> float:
        return self.bytes_per_day * self.site.law.min_retention_days


def _days_until_full(plans: list[SitePlan], *, usage: int, quota: int) -> float | None:
    """Days until the disk reaches the quota at today's rate; None without a quota, without
    footage coming in, or when every site's full retention fits (retention then frees each
    day what a day adds). Until every site holds its full period nothing ages out, so this
    counts growth at the full rate: the worst case."""
    per_day = sum(plan.bytes_per_day for plan in plans)
    if not quota or per_day <= 0:
        return None
    if usage >= quota:
        return 0.0
    if sum(plan.needed_bytes for plan in plans) <= quota:
        return None
    return (quota - usage) / per_day


@dataclass
class StoragePlan:
    sites: list[SitePlan]
    usage_bytes: int
    quota_bytes: int
    warning_days: int
    # Counted over every site, whatever part of them a page shows: they share one disk.
    days_until_full: float | None
    legal_minimum_fits: bool

    @property
    def bytes_per_day(self) -> float:
        return sum(site.bytes_per_day for site in self.sites)

    @property
    def needed_bytes(self) -> float:
        return sum(site.needed_bytes for site in self.sites)

    @property
    def legal_needed_bytes(self) -> float:
        return sum(site.legal_needed_bytes for site in self.sites)

    @property
    def warning(self) -> bool:
        days = self.days_until_full
        return not self.legal_minimum_fits or (days is not None and days < self.warning_days)


def _camera_rows(cameras: list[Camera], now: dt.datetime) -> list[CameraStorage]:
    since = now - dt.timedelta(days=RATE_WINDOW_DAYS)
    kept = Segment.objects.exclude(status=Segment.Status.PURGED).filter(camera__in=cameras)
    stats = {
        row["camera"]: row
        for row in kept.values("camera").annotate(
            stored=Sum("original_size"),
            oldest=Min("started_at"),
            recent=Sum("original_size", filter=Q(started_at__gte=since)),
            recent_first=Min("started_at", filter=Q(started_at__gte=since)),
            recent_last=Max("ended_at", filter=Q(started_at__gte=since)),
            windows=Count("pk"),
        )
    }
    rows = []
    for camera in cameras:
        row = stats.get(camera.pk)
        if row is None:
            rows.append(CameraStorage(camera.pk, camera.name, 0.0, 0, 0.0))
            continue
        span = DAY_SECONDS
        if row["recent_first"] is not None:
            # A camera that started recording two hours ago has two hours of data, not seven
            # days: divide by what was observed (at least an hour, to damp the first minutes).
            span = min(
                RATE_WINDOW_DAYS * DAY_SECONDS,
                max((now - row["recent_first"]).total_seconds(), 3600.0),
            )
        per_day = float(row["recent"] or 0) * DAY_SECONDS / span
        days_kept = (now - row["oldest"]).total_seconds() / DAY_SECONDS if row["oldest"] else 0.0
        rows.append(
            CameraStorage(camera.pk, camera.name, per_day, int(row["stored"] or 0), days_kept)
        )
    return rows


def _usage_bytes() -> int:
    """What the disk holds: the last retention run's measure (it walks MEDIA_ROOT)."""
    latest = RetentionRun.objects.filter(dry_run=False).order_by("-started_at").first()
    if latest is not None:
        return int(latest.storage_bytes)
    return media_usage_bytes()


def storage_plan(*, sites: list[Site] | None = None, now: dt.datetime | None = None) -> StoragePlan:
    """The plan for `sites` (default: all)."""
    now = now or timezone.now()
    plans = [
        SitePlan(site=site, cameras=_camera_rows(list(site.cameras.all()), now))
        for site in Site.objects.prefetch_related("cameras")
    ]
    usage = _usage_bytes()
    quota = int(settings.MEDIA_QUOTA_BYTES)
    legal_need = sum(plan.legal_needed_bytes for plan in plans)
    wanted = {site.pk for site in sites} if sites is not None else None
    return StoragePlan(
        sites=[plan for plan in plans if wanted is None or plan.site.pk in wanted],
        usage_bytes=usage,
        quota_bytes=quota,
        warning_days=int(settings.STORAGE_WARNING_DAYS),
        days_until_full=_days_until_full(plans, usage=usage, quota=quota),
        legal_minimum_fits=not quota or legal_need <= quota,
    )


def storage_warn_operators(*, now: dt.datetime | None = None) -> bool:
    """Warn operators, at most once a day, while the disk would reach the quota within
    STORAGE_WARNING_DAYS or the legal minimum of all sites does not fit the quota."""
    now = now or timezone.now()
    plan = storage_plan(now=now)
    if not plan.warning:
        return False
    recent = AuditEvent.objects.filter(
        action="storage.warning", occurred_at__gte=now - dt.timedelta(days=1)
    ).exists()
    if recent:
        return False
    details = {
        "usage_bytes": plan.usage_bytes,
        "quota_bytes": plan.quota_bytes,
        "bytes_per_day": round(plan.bytes_per_day),
        "legal_needed_bytes": round(plan.legal_needed_bytes),
        "days_until_full": None if plan.days_until_full is None else round(plan.days_until_full, 1),
    }
    audit_record(
        actor=None,
        action="storage.warning",
        outcome=AuditEvent.Outcome.FAILED,
        details=details,
    )
    broadcast([OPERATORS_GROUP], {"type": "ops.alert", "alert": "storage.warning", **details})
    return True
