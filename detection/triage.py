"""From a window's score to a case: bands per camera, merging, reporting, alerts.

Consecutive non-safe windows of one camera (closer than CASE_MERGE_GAP_SECONDS) are one Case:
the first opens it (one `case.alert`), later ones extend it. A violent window reports the case
to the site's police station at once, also when it upgrades an uncertain case. A case's footage
is every segment of its camera from CASE_PRE_ROLL_SECONDS before its first non-safe window to
CASE_POST_ROLL_SECONDS after its last.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction

from detection.alerts import broadcast_case
from detection.models import Band, Case, Detection, ModelVersion, Segment
from reports.services import audit_record

if TYPE_CHECKING:
    from cameras.models import Camera

# Cases a new non-safe window may still join; a dismissed or closed case stays closed.
MERGEABLE = (
    Case.Status.OPEN,
    Case.Status.UNDER_REVIEW,
    Case.Status.ESCALATED,
    Case.Status.REPORTED,
)


def thresholds_for(camera: Camera, version: ModelVersion) -> tuple[float, float]:
    """The camera's own thresholds where set, else the model version's."""
    high = camera.high_threshold if camera.high_threshold is not None else version.high_threshold
    low = camera.low_threshold if camera.low_threshold is not None else version.low_threshold
    # A camera that sets only a high threshold below the model's low one means "report above
    # high": nothing is left for review rather than an impossible band.
    return min(low, high), high


def band_for(score: float, *, low: float, high: float) -> Band:
    if score >= high:
        return Band.VIOLENT
    if score >= low:
        return Band.UNCERTAIN
    return Band.SAFE


def _rolls() -> tuple[dt.timedelta, dt.timedelta]:
    """How much footage a case keeps before its first and after its last non-safe window."""
    return (
        dt.timedelta(seconds=settings.CASE_PRE_ROLL_SECONDS),
        dt.timedelta(seconds=settings.CASE_POST_ROLL_SECONDS),
    )


def _attach_footage(case: Case) -> None:
    pre, post = _rolls()
    footage = Segment.objects.filter(
        camera_id=case.camera_id,
        ended_at__gt=case.started_at - pre,
        started_at__lt=case.ended_at + post,
    ).exclude(status=Segment.Status.PURGED)
    case.segments.add(*footage)


def _report(case: Case) -> None:
    from detection.services import case_transition
    from reports.models import PoliceReport
    from reports.services import police_report_send

    police_report_send(case=case, reason=PoliceReport.Reason.VIOLENT)
    case.refresh_from_db()
    details = {"reason": "violent window", "peak_score": case.peak_score}
    if case.status == Case.Status.UNDER_REVIEW:
        # An expert was still looking at it as uncertain; the model is now sure enough.
        case_transition(case=case, to=Case.Status.ESCALATED, actor=None, details=details)
    if case.can_move_to(Case.Status.REPORTED):
        case_transition(case=case, to=Case.Status.REPORTED, actor=None, details=details)


@transaction.atomic
def detection_triage(*, detection: Detection) -> Case | None:
    """Open, extend or upgrade the camera's case for a scored window; None when it is safe.

    The caller holds the camera's row lock, so windows of one camera are triaged one at a time.
    """
    segment = detection.segment
    camera = segment.camera
    gap = dt.timedelta(seconds=settings.CASE_MERGE_GAP_SECONDS)
    near = (
        Case.objects.select_for_update()
        .filter(
            camera=camera,
            status__in=MERGEABLE,
            ended_at__gte=segment.started_at - gap,
            started_at__lte=segment.ended_at + gap,
        )
        .order_by("-ended_at")
        .first()
    )
    if detection.band == Band.SAFE:
        if near is not None:
            _attach_footage_if_post_roll(near, segment)
        return None
    if near is None:
        case = Case(
            camera=camera,
            started_at=segment.started_at,
            ended_at=segment.ended_at,
            peak_score=detection.score,
            band=detection.band,
        )
        case.full_clean()
        case.save()
        _attach_footage(case)
        audit_record(
            actor=None,
            action="case.open",
            target=case,
            details={"band": case.band, "score": detection.score, "segment": segment.pk},
        )
        if case.band == Band.VIOLENT:
            _report(case)
        broadcast_case(case)
        return case
    previous_band, previous_status = near.band, near.status
    near.started_at = min(near.started_at, segment.started_at)
    near.ended_at = max(near.ended_at, segment.ended_at)
    near.peak_score = max(near.peak_score, detection.score)
    if detection.band == Band.VIOLENT:
        near.band = Band.VIOLENT
    near.save(update_fields=["started_at", "ended_at", "peak_score", "band", "updated_at"])
    _attach_footage(near)
    if near.band == Band.VIOLENT and not hasattr(near, "police_report"):
        audit_record(
            actor=None,
            action="case.upgrade",
            target=near,
            details={"from": previous_band, "score": detection.score, "segment": segment.pk},
        )
        _report(near)
    near.refresh_from_db()
    if near.band != previous_band or near.status != previous_status:
        broadcast_case(near, event="case.status")
    return near


def segment_attach_to_nearby_cases(segment: Segment) -> None:
    """Keep a window triage never sees with the cases whose pre- or post-roll it falls in.

    Motion-gated windows and windows whose analysis failed get no detection, so triage never
    attaches them; without this the footage just after an incident was not under its case's
    legal hold and retention erased it. The caller holds the camera's row lock, as triage
    does, so a case opened at the same time either sees this window or is seen by it.
    """
    pre, post = _rolls()
    for case in Case.objects.filter(
        camera_id=segment.camera_id,
        started_at__lt=segment.ended_at + pre,
        ended_at__gt=segment.started_at - post,
    ):
        case.segments.add(segment)


def _attach_footage_if_post_roll(case: Case, segment: Segment) -> None:
    _pre, post = _rolls()
    if segment.started_at < case.ended_at + post and segment.ended_at > case.started_at:
        case.segments.add(segment)
