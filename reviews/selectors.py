from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from access.policy import is_reviewer, review_scope
from detection.models import Case, Detection, Segment
from reviews.agreement import Agreement, agreement_of
from reviews.models import ReviewDecision

if TYPE_CHECKING:
    from access.typing import AnyUser

QUEUE_SORTS = {
    "score": ("-peak_score", "-started_at"),
    "-score": ("peak_score", "-started_at"),
    "time": ("started_at", "pk"),
    "-time": ("-started_at", "-pk"),
}
# Windows shown either side of a case on its score timeline.
NEIGHBOUR_SECONDS = 10


def cases_reviewable_by(user: AnyUser) -> QuerySet[Case]:
    """Uncertain cases the user may judge (see access.policy.review_scope)."""
    cases = Case.objects.select_related("camera__site", "camera__site__police_station")
    return cases.filter(review_scope(user))


def review_queue_for(
    user: AnyUser, *, sort: str = "score", site: int | None = None, region: str = ""
) -> QuerySet[Case]:
    """Uncertain cases still waiting for an expert, most suspicious first by default."""
    if not is_reviewer(user):
        return Case.objects.none()
    cases = cases_reviewable_by(user).filter(
        status__in=[Case.Status.OPEN, Case.Status.UNDER_REVIEW]
    )
    if site is not None:
        cases = cases.filter(camera__site_id=site)
    if region:
        cases = cases.filter(camera__site__region=region)
    return cases.select_related("claimed_by").order_by(*QUEUE_SORTS.get(sort, QUEUE_SORTS["score"]))


def review_queue_facets(user: AnyUser) -> tuple[list[tuple[int, str]], list[str]]:
    """The sites and regions the user's queue can be filtered by."""
    base = review_queue_for(user).order_by()
    sites = sorted(
        set(base.values_list("camera__site_id", "camera__site__name")), key=lambda s: s[1]
    )
    regions = sorted(set(base.values_list("camera__site__region", flat=True)))
    return sites, regions


def cases_for_review(user: AnyUser) -> QuerySet[Case]:
    """Cases the user may review (any status, so decided cases still open read-only)."""
    if not is_reviewer(user):
        return Case.objects.none()
    return cases_reviewable_by(user).select_related("claimed_by")


def case_for_review(user: AnyUser, pk: int) -> Case | None:
    return cases_for_review(user).filter(pk=pk).first()


def case_segments(case: Case) -> list[Segment]:
    return list(case.segments.order_by("started_at"))


def case_footage_start(case: Case, segments: list[Segment] | None = None) -> dt.datetime:
    segments = case_segments(case) if segments is None else segments
    return min([case.started_at, *(s.started_at for s in segments)])


def case_footage_seconds(case: Case) -> float:
    segments = case_segments(case)
    start = case_footage_start(case, segments)
    end = max([case.ended_at, *(s.ended_at for s in segments)])
    return (end - start).total_seconds()


@dataclass(frozen=True)
class TimelineWindow:
    segment: int
    start: float
    end: float
    score: float
    band: str
    in_case: bool
    # What the player plays: the blurred working copy (issue #15: experts and police watched
    # footage byte-identical to the originals). Made once per segment, on first need.
    preview_url: str | None
    # The unaltered original, one audited click away (the file view audits and scopes it).
    original_url: str | None = None


def case_timeline(case: Case) -> list[TimelineWindow]:
    """Scores of the case's windows and their neighbours, seconds from the case's footage start."""
    segments = case_segments(case)
    origin = case_footage_start(case, segments)
    in_case = {s.pk for s in segments}
    window_start = origin - dt.timedelta(seconds=NEIGHBOUR_SECONDS)
    window_end = max([case.ended_at, *(s.ended_at for s in segments)]) + dt.timedelta(
        seconds=NEIGHBOUR_SECONDS
    )
    nearby = Segment.objects.filter(
        Q(pk__in=in_case)
        | Q(camera_id=case.camera_id, started_at__gte=window_start, started_at__lte=window_end)
    ).order_by("started_at")
    detections: dict[int, Detection] = {}
    # Latest detection per segment; the active model's wins over older ones.
    for detection in (
        Detection.objects.filter(segment__in=nearby)
        .select_related("model_version")
        .order_by("model_version__is_active", "created_at")
    ):
        detections[detection.segment_id] = detection
    windows = []
    for segment in nearby:
        if segment.pk not in detections:
            continue
        detection = detections[segment.pk]
        windows.append(
            TimelineWindow(
                segment=segment.pk,
                start=(segment.started_at - origin).total_seconds(),
                end=(segment.ended_at - origin).total_seconds(),
                score=round(detection.score, 4),
                band=detection.band,
                in_case=segment.pk in in_case,
                preview_url=(
                    reverse("segment-working-copy", kwargs={"pk": segment.pk})
                    if segment.original and segment.status != Segment.Status.PURGED
                    else None
                ),
                original_url=(
                    reverse("segment-file", kwargs={"pk": segment.pk, "kind": "original"})
                    if segment.original and segment.status != Segment.Status.PURGED
                    else None
                ),
            )
        )
    return windows


def claim_is_active(case: Case, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    return (
        case.claimed_by_id is not None
        and case.claim_expires_at is not None
        and case.claim_expires_at > now
    )


def review_agreement() -> Agreement:
    """Cohen's kappa over every pair of experts' verdicts on the same case (operators' view)."""
    by_case: dict[int, list[str]] = {}
    for case_id, verdict in ReviewDecision.objects.order_by(
        "case_id", "created_at", "pk"
    ).values_list("case_id", "verdict"):
        by_case.setdefault(case_id, []).append(verdict)
    return agreement_of(by_case.values())


def reviews_remaining(case: Case) -> int:
    """Decisions still needed before the case is settled (0 once it is).

    One escalation settles a case at once; a dismissal needs a second expert to agree, so a
    case with one dismissal and no escalation needs one more decision.
    """
    if case.status not in (Case.Status.OPEN, Case.Status.UNDER_REVIEW):
        return 0
    return max(1, case.reviews_required - case.decisions.count())
