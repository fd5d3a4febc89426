"""Reads of cases, segments and detections, scoped to what a user may see.

A user may hold several attachments at once (admin of a site and an expert, say); what they
see is the union of what each attachment allows, never more.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet

from access.policy import CASES, SEGMENTS, scope, visible
from access.typing import AnyUser as User
from detection.models import Case, Detection, Segment

if TYPE_CHECKING:
    from cameras.models import Camera


def cases_visible_to(user: User) -> QuerySet[Case]:
    cases = Case.objects.select_related("camera__site", "camera__site__police_station")
    return visible(cases, user, CASES)


def segments_visible_to(user: User) -> QuerySet[Segment]:
    """Footage: a site's admins see their cameras' segments; others only those of their cases."""
    if not user.is_authenticated or not user.is_active:
        return Segment.objects.none()
    segments = Segment.objects.select_related("camera__site")
    if getattr(user, "is_superuser", False):
        return segments
    via_cases = Case.objects.filter(pk__in=cases_visible_to(user).values("pk")).values("segments")
    own_cameras = scope(user, SEGMENTS)
    seen = Q(pk__in=via_cases) if own_cameras is None else own_cameras | Q(pk__in=via_cases)
    return segments.filter(pk__in=Segment.objects.filter(seen).values("pk"))


@dataclass(frozen=True)
class ScoreBucket:
    """The highest score of the windows that started in one bucket, and that score's band."""

    index: int
    score: float
    band: str


def peak_scores_by_bucket(
    camera: Camera, start: dt.datetime, end: dt.datetime, bucket_seconds: int
) -> list[ScoreBucket]:
    """Buckets of ``bucket_seconds`` from ``start`` holding a detection, in time order.

    The caller has already checked that the user may see ``camera``. A day of 2-second windows
    is tens of thousands of rows, so only the three columns needed are streamed.
    """
    peaks: dict[int, ScoreBucket] = {}
    rows = (
        Detection.objects.filter(
            segment__camera=camera, segment__started_at__gte=start, segment__started_at__lt=end
        )
        .values_list("segment__started_at", "score", "band")
        .order_by()
    )
    for started_at, score, band in rows.iterator():
        index = int((started_at - start).total_seconds() // bucket_seconds)
        peak = peaks.get(index)
        if peak is None or score > peak.score:
            peaks[index] = ScoreBucket(index, float(score), str(band))
    return [peaks[index] for index in sorted(peaks)]
