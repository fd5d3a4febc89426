"""Reads of cases, segments and detections, scoped to what a user may see.

A user may hold several attachments at once (admin of a site and an expert, say); what they
see is the union of what each attachment allows, never more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet

from detection.models import Band, Case, Segment

if TYPE_CHECKING:
    from abusewatch.typing import AnyUser as User


def _expert_regions(user: User) -> list[str] | None:
    """The regions an expert reviews ([] = all regions), or None when not an expert."""
    from reviews.models import ExpertProfile

    if user.pk is None:
        return None
    profile = ExpertProfile.objects.filter(user__pk=user.pk).only("regions").first()
    if profile is None:
        return None
    return [str(region) for region in profile.regions or []]


def case_scope(user: User) -> Q | None:
    if not user.is_authenticated or not user.is_active:
        return Q(pk__in=[])
    if getattr(user, "is_superuser", False):
        return None
    scope = Q(camera__site__admins__id=user.pk)
    scope |= Q(police_report__station__liaisons__id=user.pk)
    regions = _expert_regions(user)
    if regions is not None:
        expert_scope = Q(band=Band.UNCERTAIN)
        if regions:
            expert_scope &= Q(camera__site__region__in=regions)
        scope |= expert_scope
    return scope


def cases_visible_to(user: User) -> QuerySet[Case]:
    scope = case_scope(user)
    cases = Case.objects.select_related("camera__site", "camera__site__police_station")
    if scope is None:
        return cases
    # Filter on ids so the joins across attachments cannot duplicate rows.
    visible_ids = Case.objects.filter(scope).values("pk")
    return cases.filter(pk__in=visible_ids)


def segments_visible_to(user: User) -> QuerySet[Segment]:
    """Footage: a site's admins see their cameras' segments; others only those of their cases."""
    if not user.is_authenticated or not user.is_active:
        return Segment.objects.none()
    segments = Segment.objects.select_related("camera__site")
    if getattr(user, "is_superuser", False):
        return segments
    via_cases = Case.objects.filter(pk__in=cases_visible_to(user).values("pk")).values("segments")
    visible = Q(camera__site__admins__id=user.pk) | Q(pk__in=via_cases)
    return segments.filter(pk__in=Segment.objects.filter(visible).values("pk"))
