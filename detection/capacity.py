"""Which cameras are "over capacity" now, and why, in words a centre admin can act on.

A camera is over capacity when, in the last CAPACITY_NOTICE_MINUTES, analysis fell behind on its
windows (detection.backpressure): a window waits longer than INFERENCE_MAX_LAG_SECONDS or was
deferred, was skipped for capacity, or was decided without the pose check (stage 2) for
capacity. Computed from the rows at page time, not stored as a flag on the camera: the facts
are already on Segment and Detection, a flag would need a writer to clear it when the load
drops, and the cameras app must not know about analysis (it sits below detection). The pages
that show camera health (site and camera pages, the camera wall) sit above both and call
`capacity_notes` for the cameras the viewer may already see, so the notice is scoped as the
cameras are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from detection.backpressure import skipped_for_capacity
from detection.models import Detection, Segment, Stage2Skipped


@dataclass(frozen=True)
class CapacityNote:
    """One camera's recent capacity trouble; `reasons` says it in the viewer's language."""

    behind_seconds: float  # age of its oldest waiting window, when past INFERENCE_MAX_LAG
    deferred: int  # windows deferred and still waiting
    skipped: int  # windows skipped for capacity recently
    stage2_skipped: int  # gated windows decided without stage 2 for capacity recently
    stage2_gated: int  # gated windows recently (stage 2 ran, or was skipped for any reason)
    minutes: int

    @property
    def reasons(self) -> list[str]:
        reasons = []
        if self.behind_seconds:
            reasons.append(
                _("analysis is %(seconds)d s behind") % {"seconds": round(self.behind_seconds)}
            )
        if self.deferred:
            reasons.append(
                ngettext(
                    "%(count)d window waits to be analysed when the load drops",
                    "%(count)d windows wait to be analysed when the load drops",
                    self.deferred,
                )
                % {"count": self.deferred}
            )
        if self.skipped:
            reasons.append(
                ngettext(
                    "%(count)d window was not analysed in time (footage kept)",
                    "%(count)d windows were not analysed in time (footage kept)",
                    self.skipped,
                )
                % {"count": self.skipped}
            )
        if self.stage2_skipped:
            percent = round(100 * self.stage2_skipped / max(1, self.stage2_gated))
            reasons.append(
                _("pose check skipped for %(percent)d%% of windows in the last %(minutes)d minutes")
                % {"percent": percent, "minutes": self.minutes}
            )
        return reasons

    @property
    def explanation(self) -> str:
        return "; ".join(self.reasons)


def capacity_notes(
    camera_ids: Iterable[int], *, now: dt.datetime | None = None
) -> dict[int, CapacityNote]:
    """The cameras among `camera_ids` that are over capacity, with why; the others are absent.
    The caller passes only cameras the viewer may see. Three queries whatever the number of
    cameras; ~30 ms for 32 cameras with 160,000 stored windows on SQLite."""
    ids = list(camera_ids)
    if not ids:
        return {}
    now = now or timezone.now()
    minutes = settings.CAPACITY_NOTICE_MINUTES
    since = now - dt.timedelta(minutes=minutes)
    # Waiting windows: the backlog, read in the order of the partial index of pending windows
    # and summed here (6 ms for 672 waiting windows). Grouped in SQL, the planner walks every
    # camera's whole history through the (camera, start) index instead (56 ms at 160,000
    # windows on SQLite).
    wanted = set(ids)
    oldest: dict[int, dt.datetime] = {}
    deferred: dict[int, int] = {}
    for camera_id, created_at, deferred_at in (
        Segment.objects.filter(status=Segment.Status.PENDING)
        .order_by("created_at")
        .values_list("camera_id", "created_at", "deferred_at")
    ):
        if camera_id not in wanted:
            continue
        oldest.setdefault(camera_id, created_at)
        if deferred_at is not None:
            deferred[camera_id] = deferred.get(camera_id, 0) + 1
    # A capacity skip happens INFERENCE_DEFERRED_MAX_AGE_SECONDS after the window was stored
    # (its time is not recorded apart): "recent" skips are windows that much older than the
    # notice's span. Recent windows are found by their start, through the (camera, start)
    # index: a camera's day is 43,200 windows, its whole history millions. An edge upload of
    # old footage has an old start and does not count here; it is not live work.
    skip_since = since - dt.timedelta(seconds=settings.INFERENCE_DEFERRED_MAX_AGE_SECONDS)
    skipped: dict[int, int] = dict(
        Segment.objects.filter(
            skipped_for_capacity(), camera_id__in=ids, started_at__gte=skip_since
        )
        .values_list("camera_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    gated: dict[int, dict[str, Any]] = {
        row["segment__camera_id"]: dict(row)
        for row in Detection.objects.filter(
            segment__camera_id__in=ids, segment__started_at__gte=since
        )
        .filter(Q(stage2_score__isnull=False) | ~Q(stage2_skipped=Stage2Skipped.NO))
        .values("segment__camera_id")
        .annotate(
            total=Count("pk"),
            capacity=Count("pk", filter=Q(stage2_skipped=Stage2Skipped.OVER_CAPACITY)),
        )
        .order_by()
    }
    notes: dict[int, CapacityNote] = {}
    for camera_id in ids:
        first = oldest.get(camera_id)
        behind = (now - first).total_seconds() if first is not None else 0.0
        if behind <= settings.INFERENCE_MAX_LAG_SECONDS:
            behind = 0.0
        stage2: dict[str, Any] = gated.get(camera_id, {})
        note = CapacityNote(
            behind_seconds=behind,
            deferred=deferred.get(camera_id, 0),
            skipped=skipped.get(camera_id, 0),
            stage2_skipped=int(stage2.get("capacity", 0)),
            stage2_gated=int(stage2.get("total", 0)),
            minutes=minutes,
        )
        if note.reasons:
            notes[camera_id] = note
    return notes
