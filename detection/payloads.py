"""The JSON a live message or a notification carries about a case or a scored window."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from detection.models import Case, Detection
from portal.sitetime import site_time


def case_payload(case: Case) -> dict[str, Any]:
    camera = case.camera
    first_segment = case.segments.order_by("started_at").first()
    preview_url = (
        reverse("segment-file", kwargs={"pk": first_segment.pk, "kind": "preview"})
        if first_segment is not None and first_segment.preview
        else None
    )
    return {
        "id": case.pk,
        "camera": camera.pk,
        "camera_name": camera.name,
        "site": camera.site_id,
        "site_name": camera.site.name,
        "band": case.band,
        "status": case.status,
        "peak_score": round(case.peak_score, 4),
        "started_at": case.started_at.isoformat(),
        "ended_at": case.ended_at.isoformat(),
        "preview_url": preview_url,
        # The lifecycle (issue #15): whether the span has ended and why, and the case this one
        # continues (a reported or over-long one), so every portal can show the link live.
        "span_end_reason": case.span_end_reason,
        "follows": case.follows_id,
        # Formatted here, in the site's zone, exactly as the pages render it (issue #15).
        "started_at_display": site_time(case.started_at, case.camera.site.timezone),
    }


def detection_payload(detection: Detection, *, case: Case | None = None) -> dict[str, Any]:
    segment = detection.segment
    return {
        "id": detection.pk,
        "segment": segment.pk,
        "camera": segment.camera_id,
        "site": segment.camera.site_id,
        "score": round(detection.score, 4),
        "band": detection.band,
        "started_at": segment.started_at.isoformat(),
        "ended_at": segment.ended_at.isoformat(),
        "case": case.pk if case is not None else None,
    }
